package config

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// WriteTable prints values as a table: name, value, where it came from,
// the default and the readers.
func WriteTable(w io.Writer, values []Value) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tVALUE\tSOURCE\tDEFAULT\tREAD BY")
	for _, v := range values {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", v.Name, dash(v.Value), v.Source, dash(v.Default), ReadersText(v.Roles()))
	}
	return tw.Flush()
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// ReadersText names readers.
func ReadersText(readers []string) string { return strings.Join(readers, ", ") }
