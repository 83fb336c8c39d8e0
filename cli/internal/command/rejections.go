package command

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/kilnhq/kiln/connect"
	"github.com/kilnhq/kiln/ingest"
	"github.com/kilnhq/kiln/schemas"
	"github.com/kilnhq/kiln/schemas/rejections"
)

// rejectionsCommand lists and recovers the events ingest refused or
// quarantined, kept in the REJECTIONS stream.
func rejectionsCommand(c *conn) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "rejections",
		Short: "List and recover refused or quarantined events (REJECTIONS)",
		Example: `  kiln rejections list --type order.created
  kiln rejections recover --type order.created --since 24h --dry-run`,
	}
	var typ, field, since string
	var limit int
	var asJSON bool
	list := &cobra.Command{
		Use:   "list [--type T] [--field F] [--since T]",
		Short: "List refused and quarantined events, newest first, with their reasons",
		Example: `  kiln rejections list
  kiln rejections list --type order.created --field metadata.amount --since 2h --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			from, err := parseSince(since)
			if err != nil {
				return err
			}
			js, err := c.jetStream()
			if err != nil {
				return err
			}
			s, err := js.Stream(cmd.Context(), rejections.StreamName)
			if err != nil {
				return fmt.Errorf("rejections: stream %s: %w", rejections.StreamName, err)
			}
			recs, _, err := rejections.List(cmd.Context(), s, rejections.Query{Type: typ, Field: field, Since: from, Limit: limit})
			if err != nil {
				return err
			}
			if asJSON {
				enc := json.NewEncoder(c.io.Out)
				for _, r := range recs {
					if err := enc.Encode(struct {
						rejections.Record
						Body json.RawMessage `json:"body"`
					}{r, bodyJSON(r.Body)}); err != nil {
						return err
					}
				}
				return nil
			}
			for _, r := range recs {
				fmt.Fprintf(c.io.Out, "%d\t%s\t%s\t%s\t%s\t%s\n", r.Seq, r.Time.Format(time.RFC3339), r.Outcome,
					orDash(r.EventType), orDash(r.ID), reasons(r.Reasons))
			}
			fmt.Fprintf(c.io.Out, "%d records\n", len(recs))
			return nil
		},
	}
	list.Flags().StringVar(&typ, "type", "", "only this event type")
	list.Flags().StringVar(&field, "field", "", "only events refused for this field (or a field inside it)")
	list.Flags().StringVar(&since, "since", "", "only records since this time: RFC 3339, or a duration back from now (24h)")
	list.Flags().IntVar(&limit, "limit", 100, "most records listed")
	list.Flags().BoolVar(&asJSON, "json", false, "print one JSON record a line, with the body")

	var dryRun bool
	recover := &cobra.Command{
		Use:   "recover [--type T] [--since T] [--dry-run]",
		Short: "Validate kept events against the current schema versions and store those that pass, under their original ids",
		Long: `Re-validate the events in REJECTIONS against the schema versions (and
enforcement) in force now, and append those that pass to EVENTS under their
original ids, through ingest's publish path and id ledger: an id stored
already (an earlier recover, or the client's retry) is reported, never
stored twice. Prints one line per record: recovered, already stored, still
failing (with the reasons), unavailable (run it again), or not recoverable
(a body that was not well-formed JSON, or one cut to fit the stream:
skipped, with the reason). Reads ingest's
settings (INGEST_IDEMPOTENCY_TTL, STREAM_*, SCHEMAS_*) from the environment.`,
		Example: `  kiln rejections recover --type order.created --dry-run
  kiln rejections recover --since 2026-12-01T00:00:00Z`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			from, err := parseSince(since)
			if err != nil {
				return err
			}
			env := map[string]string{}
			for k, v := range c.io.Env {
				env[k] = v
			}
			env["NATS_URL"] = c.natsURL
			cfg, err := ingest.LoadConfig(env)
			if err != nil {
				return err
			}
			nc, err := c.conns.NATS(c.natsURL, "kiln-cli", connect.Append)
			if err != nil {
				return err
			}
			counts := map[string]int{}
			err = ingest.Recover(cmd.Context(), nc, cfg, ingest.RecoverOptions{Type: typ, Since: from, DryRun: dryRun}, c.log(),
				func(e ingest.RecoveredEvent) {
					counts[e.Outcome]++
					line := fmt.Sprintf("%s\t%d\t%s\t%s", e.Outcome, e.Record, orDash(e.EventType), orDash(e.ID))
					if e.Seq != 0 {
						line += fmt.Sprintf("\tseq %d", e.Seq)
					}
					if len(e.Reasons) > 0 {
						line += "\t" + reasons(e.Reasons)
					}
					if e.Why != "" {
						line += "\t" + e.Why
					}
					fmt.Fprintln(c.io.Out, line)
				})
			fmt.Fprintf(c.io.Out, "%d recovered, %d would recover, %d already stored, %d still failing, %d unavailable, %d not recoverable\n",
				counts[ingest.Recovered], counts[ingest.WouldRecover], counts[ingest.AlreadyStored], counts[ingest.StillFailing], counts[ingest.NotRecovered], counts[ingest.Unrecoverable])
			return err
		},
	}
	recover.Flags().StringVar(&typ, "type", "", "only this event type")
	recover.Flags().StringVar(&since, "since", "", "only records since this time: RFC 3339, or a duration back from now (24h)")
	recover.Flags().BoolVar(&dryRun, "dry-run", false, "validate only: store nothing")
	cmd.AddCommand(list, recover)
	return cmd
}

// parseSince reads --since: RFC 3339, or a duration back from now.
func parseSince(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	if d, err := time.ParseDuration(s); err == nil && d > 0 {
		return time.Now().Add(-d), nil
	}
	return time.Time{}, fmt.Errorf("--since: %q is neither an RFC 3339 time nor a positive duration (24h)", s)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func reasons(errs []schemas.FieldError) string {
	parts := make([]string, len(errs))
	for i, e := range errs {
		parts[i] = orDash(e.Field) + ": " + e.Message
	}
	return strings.Join(parts, "; ")
}

// bodyJSON is a kept body as JSON when it is valid JSON, else as a string.
func bodyJSON(b []byte) json.RawMessage {
	if json.Valid(b) {
		return b
	}
	s, _ := json.Marshal(string(b))
	return s
}
