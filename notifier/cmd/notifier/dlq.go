package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"

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
		return dlq.Print(stdout, letters, *asJSON)
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
