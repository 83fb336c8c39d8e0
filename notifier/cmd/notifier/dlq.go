package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/kilnhq/kiln/notifier/dlq"
)

// dlqCommand runs "dlq list" and "dlq redrive" against NATS_URL.
func dlqCommand(ctx context.Context, args []string, env map[string]string, stdout io.Writer) error {
	if len(args) == 0 {
		return errors.New(usage)
	}
	fs := flag.NewFlagSet("dlq "+args[0], flag.ContinueOnError)
	asJSON := fs.Bool("json", false, "print JSON")
	all := fs.Bool("all", false, "redrive every dead delivery")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	url := env["NATS_URL"]
	if url == "" {
		url = nats.DefaultURL
	}
	nc, err := nats.Connect(url, nats.Name("kiln-notifier-dlq"))
	if err != nil {
		return fmt.Errorf("connect to nats: %w", err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return fmt.Errorf("jetstream: %w", err)
	}
	switch args[0] {
	case "list":
		letters, err := dlq.List(ctx, js)
		if err != nil {
			return err
		}
		return printLetters(stdout, letters, *asJSON)
	case "redrive":
		var done []dlq.DeadLetter
		switch {
		case *all && fs.NArg() == 0:
			done, err = dlq.RedriveAll(ctx, js)
		case !*all && fs.NArg() > 0:
			done, err = dlq.Redrive(ctx, js, fs.Args())
		default:
			return errors.New("dlq redrive: give -all or delivery ids (alertID:channel), not both")
		}
		for _, d := range done {
			fmt.Fprintf(stdout, "redriven %s (dead letter %d)\n", d.Job.ID(), d.Seq)
		}
		if err == nil {
			fmt.Fprintf(stdout, "%d redriven\n", len(done))
		}
		return err
	}
	return fmt.Errorf("unknown dlq command %q\n%s", args[0], usage)
}

func printLetters(w io.Writer, letters []dlq.DeadLetter, asJSON bool) error {
	if asJSON {
		if letters == nil {
			letters = []dlq.DeadLetter{}
		}
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(letters)
	}
	if len(letters) == 0 {
		_, err := fmt.Fprintln(w, "no dead letters")
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SEQ\tDELIVERY\tRULE\tATTEMPTS\tFAILED AT\tERROR")
	for _, d := range letters {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%d\t%s\t%s\n", d.Seq, d.Job.ID(), d.Job.Alert.Rule, d.Attempts,
			time.UnixMilli(d.FailedAt).UTC().Format(time.RFC3339), d.Error)
	}
	return tw.Flush()
}
