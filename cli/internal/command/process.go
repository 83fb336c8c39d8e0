package command

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/kilnhq/kiln/notifier"
)

// versionCommand prints the release, as kiln --version does.
func versionCommand(io IO) *cobra.Command {
	return &cobra.Command{
		Use:     "version",
		Short:   "Print Kiln's version (the same as kiln --version)",
		Example: "  kiln version",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, err := fmt.Fprintln(io.Out, io.Version)
			return err
		},
	}
}

// healthcheckTimeout bounds one health check.
const healthcheckTimeout = 2 * time.Second

// healthcheckCommand is the container health check: the images are
// distroless, with no shell, curl or wget.
func healthcheckCommand(io IO) *cobra.Command {
	return &cobra.Command{
		Use:   "healthcheck URL",
		Short: "Exit 0 when URL answers 2xx within two seconds, 1 otherwise (the images' HEALTHCHECK)",
		Example: `  kiln healthcheck http://127.0.0.1:9101/readyz
  kiln healthcheck http://127.0.0.1:9100/readyz/ingest`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return healthcheck(cmd.Context(), args[0])
		},
	}
}

func healthcheck(ctx context.Context, url string) error {
	ctx, cancel := context.WithTimeout(ctx, healthcheckTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return fmt.Errorf("healthcheck: %w", err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("healthcheck: %w", err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("healthcheck: %s answered %s", url, resp.Status)
	}
	return nil
}

// rulesCommand checks the notifier's rules file.
func rulesCommand(io IO) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "rules",
		Short:   "Check the notifier's alert rules",
		Example: "  NOTIFIER_RULES_FILE=rules.yaml kiln rules check",
	}
	cmd.AddCommand(&cobra.Command{
		Use:   "check",
		Short: "Check the rules file (NOTIFIER_RULES_FILE, else the built-in example rules) and exit",
		Long: `Check the rules file the notifier would load (NOTIFIER_RULES_FILE, else the
built-in example rules) against the configured channels, naming each bad rule,
its line and field. The notifier refuses to start on a file that fails it.`,
		Example: "  NOTIFIER_RULES_FILE=rules.yaml kiln rules check",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := notifier.LoadConfig(io.Env)
			if err != nil {
				return err
			}
			names, err := notifier.CheckRules(cfg)
			if err != nil {
				return err
			}
			_, err = fmt.Fprintf(io.Out, "%d rules ok: %s\n", len(names), strings.Join(names, ", "))
			return err
		},
	})
	return cmd
}
