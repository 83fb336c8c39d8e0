// Command notifier runs Kiln's notifier (alert rules → Slack, email, log)
// and manages its dead letters.
//
//	notifier                      run the service (configured from the environment)
//	notifier rules check          check the rules file (NOTIFIER_RULES_FILE) and exit
//	notifier dlq list [-json]     list dead deliveries
//	notifier dlq redrive -all     queue every dead delivery again
//	notifier dlq redrive ID...    queue the named deliveries (alertID:channel) again
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/kilnhq/kiln/notifier"
)

const usage = `usage:
  notifier                      run the notifier
  notifier rules check          check the rules file and exit
  notifier dlq list [-json]     list dead deliveries
  notifier dlq redrive -all     queue every dead delivery again
  notifier dlq redrive ID...    queue deliveries (alertID:channel) again`

// version is the release, set at build time with
// -ldflags "-X main.version=v1.2.3" (Makefile, Dockerfiles, goreleaser).
var version = "dev"

func main() {
	if len(os.Args) == 2 && os.Args[1] == "--version" {
		fmt.Println(version)
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Environ(), os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "notifier:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args, environ []string, stdout, stderr io.Writer) error {
	env := map[string]string{}
	for _, kv := range environ {
		k, v, _ := strings.Cut(kv, "=")
		env[k] = v
	}
	cmd := ""
	if len(args) > 0 {
		cmd = args[0]
	}
	switch cmd {
	case "", "serve":
		log := slog.New(slog.NewJSONHandler(stderr, nil)).With("service", "notifier", "version", version)
		cfg, err := notifier.LoadConfig(env)
		if err != nil {
			return err
		}
		return notifier.Run(ctx, cfg, log)
	case "rules":
		if len(args) != 2 || args[1] != "check" {
			return errors.New(usage)
		}
		cfg, err := notifier.LoadConfig(env)
		if err != nil {
			return err
		}
		names, err := notifier.CheckRules(cfg)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%d rules ok: %s\n", len(names), strings.Join(names, ", "))
		return nil
	case "dlq":
		return dlqCommand(ctx, args[1:], env, stdout)
	case "help", "-h", "-help", "--help":
		fmt.Fprintln(stdout, usage)
		return nil
	}
	return fmt.Errorf("unknown command %q\n%s", cmd, usage)
}
