package command

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
)

// webhooksCommand manages outbound webhook endpoints through Kiln's admin
// API (the standalone's public port; KILN_ADMIN_KEYS guards it).
func webhooksCommand(c *conn) *cobra.Command {
	api := &adminAPI{}
	cmd := &cobra.Command{
		Use:   "webhooks",
		Short: "Manage outbound webhook endpoints: create, list, change, rotate secrets, test, inspect and redrive deliveries",
		Example: `  kiln webhooks create --endpoint-url https://example.com/hook --filter 'order.*'
  kiln webhooks list
  kiln webhooks deliveries ep_… --status dead`,
	}
	pf := cmd.PersistentFlags()
	pf.StringVar(&api.base, "url", envOr(c.io.Getenv, "KILN_URL", "http://127.0.0.1:8080"), "Kiln's HTTP base URL (env KILN_URL)")
	pf.StringVar(&api.key, "admin-key", c.io.Getenv("KILN_ADMIN_KEY"), "an admin key when KILN_ADMIN_KEYS is set (env KILN_ADMIN_KEY)")
	out := func(b []byte) error { return printJSON(c.io.Out, b) }

	var in struct {
		url, description string
		filters          []string
	}
	body := func(cmd *cobra.Command) map[string]any {
		m := map[string]any{}
		if cmd.Flags().Changed("endpoint-url") {
			m["url"] = in.url
		}
		if cmd.Flags().Changed("filter") {
			m["filters"] = append([]string{}, in.filters...)
		}
		if cmd.Flags().Changed("description") {
			m["description"] = in.description
		}
		return m
	}
	inputFlags := func(cmd *cobra.Command) {
		cmd.Flags().StringVar(&in.url, "endpoint-url", "", "where events are POSTed (http or https)")
		cmd.Flags().StringArrayVar(&in.filters, "filter", nil, "event type pattern, stream wildcards (order.*, order.>); repeatable; none: every type")
		cmd.Flags().StringVar(&in.description, "description", "", "a note for operators")
	}
	create := &cobra.Command{
		Use: "create --endpoint-url URL [--filter PATTERN]... [--description TEXT]", Short: "Create an endpoint; prints its secret, shown this once",
		Example: "  kiln webhooks create --endpoint-url https://example.com/hook --filter 'order.*' --description billing",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			b, err := api.call(cmd, http.MethodPost, "/webhook-endpoints", body(cmd))
			if err != nil {
				return err
			}
			fmt.Fprintln(c.io.Err, "kiln: keep the secret now: it is not shown again")
			return out(b)
		},
	}
	inputFlags(create)
	update := &cobra.Command{
		Use: "update ENDPOINT [--endpoint-url URL] [--filter PATTERN]... [--description TEXT]", Short: "Change an endpoint (only the flags given)",
		Example: "  kiln webhooks update ep_… --filter 'order.>' --filter payment.failed",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			b, err := api.call(cmd, http.MethodPatch, "/webhook-endpoints/"+url.PathEscape(args[0]), body(cmd))
			if err != nil {
				return err
			}
			return out(b)
		},
	}
	inputFlags(update)
	list := &cobra.Command{
		Use: "list", Short: "List endpoints with their health", Args: cobra.NoArgs,
		Example: "  kiln webhooks list\n  kiln webhooks list --url http://kiln:8082 --admin-key $KILN_ADMIN_KEY",
		RunE: func(cmd *cobra.Command, _ []string) error {
			b, err := api.call(cmd, http.MethodGet, "/webhook-endpoints", nil)
			if err != nil {
				return err
			}
			return printEndpoints(c.io.Out, b)
		},
	}
	simple := func(use, short, method, suffix string) *cobra.Command {
		return &cobra.Command{
			Use: use + " ENDPOINT", Short: short, Args: cobra.ExactArgs(1),
			Example: "  kiln webhooks " + use + " ep_…",
			RunE: func(cmd *cobra.Command, args []string) error {
				b, err := api.call(cmd, method, "/webhook-endpoints/"+url.PathEscape(args[0])+suffix, nil)
				if err != nil {
					return err
				}
				if len(b) == 0 {
					fmt.Fprintln(c.io.Out, "deleted", args[0])
					return nil
				}
				return out(b)
			},
		}
	}
	var status string
	var limit int
	deliveries := &cobra.Command{
		Use: "deliveries ENDPOINT [--status succeeded|retrying|dead]", Short: "An endpoint's delivery log: attempts, status codes, latency, response excerpts, next try",
		Example: "  kiln webhooks deliveries ep_… --status dead --limit 20",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			q := url.Values{"limit": {fmt.Sprint(limit)}}
			if status != "" {
				q.Set("status", status)
			}
			b, err := api.call(cmd, http.MethodGet, "/webhook-endpoints/"+url.PathEscape(args[0])+"/deliveries?"+q.Encode(), nil)
			if err != nil {
				return err
			}
			return out(b)
		},
	}
	deliveries.Flags().StringVar(&status, "status", "", "only deliveries in this status")
	deliveries.Flags().IntVar(&limit, "limit", 100, "most deliveries shown (1-1000)")

	var delivery, endpoint, since string
	redrive := &cobra.Command{
		Use:   "redrive --delivery ID | --endpoint ENDPOINT [--since T] | --since T",
		Short: "Queue dead deliveries again (fresh schedule, same webhook-id)",
		Example: `  kiln webhooks redrive --delivery msg_…
  kiln webhooks redrive --endpoint ep_… --since 2026-12-01T00:00:00Z
  kiln webhooks redrive --since 2026-12-01T00:00:00Z`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var path string
			switch {
			case delivery != "" && endpoint == "" && since == "":
				path = "/webhook-deliveries/" + url.PathEscape(delivery) + "/redrive"
			case delivery == "" && endpoint != "":
				path = "/webhook-endpoints/" + url.PathEscape(endpoint) + "/redrive"
			case delivery == "" && since != "":
				path = "/webhook-deliveries/redrive"
			default:
				return errors.New("webhooks redrive: give --delivery, or --endpoint (and maybe --since), or --since")
			}
			if since != "" {
				path += "?since=" + url.QueryEscape(since)
			}
			b, err := api.call(cmd, http.MethodPost, path, nil)
			if err != nil {
				return err
			}
			return out(b)
		},
	}
	redrive.Flags().StringVar(&delivery, "delivery", "", "one dead delivery (its webhook-id)")
	redrive.Flags().StringVar(&endpoint, "endpoint", "", "every dead delivery of this endpoint")
	redrive.Flags().StringVar(&since, "since", "", "only deliveries created since (RFC 3339 or Unix ms)")

	cmd.AddCommand(create, list, update, deliveries, redrive,
		simple("get", "Show one endpoint", http.MethodGet, ""),
		simple("delete", "Delete an endpoint", http.MethodDelete, ""),
		simple("disable", "Disable an endpoint", http.MethodPost, "/disable"),
		simple("enable", "Enable an endpoint (clears the reason and the failing run)", http.MethodPost, "/enable"),
		simple("rotate-secret", "New secret (printed once); the old one signs too for WEBHOOKS_ROTATION_OVERLAP", http.MethodPost, "/rotate-secret"),
		simple("test", "Send a signed test event now and print the attempt", http.MethodPost, "/test"),
	)
	return cmd
}

// adminAPI calls Kiln's admin routes.
type adminAPI struct {
	base, key string
}

func (a *adminAPI) call(cmd *cobra.Command, method, path string, in any) ([]byte, error) {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return nil, err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(cmd.Context(), method, strings.TrimRight(a.base, "/")+path, body)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	if a.key != "" {
		req.Header.Set("Authorization", "Bearer "+a.key)
	}
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode >= 300 {
		return nil, a.problem(method, path, resp.StatusCode, b)
	}
	return b, nil
}

// problem is the error of an answer >= 300: its status, and the problem
// document's title, detail and field errors.
func (a *adminAPI) problem(method, path string, status int, b []byte) error {
	var p struct {
		Title, Detail string
		Errors        []struct{ Field, Message string }
	}
	_ = json.Unmarshal(b, &p)
	msg := fmt.Sprintf("%s %s: %d %s", method, path, status, p.Title)
	if p.Detail != "" {
		msg += ": " + p.Detail
	}
	for _, e := range p.Errors {
		msg += fmt.Sprintf("; %s %s", e.Field, e.Message)
	}
	return errors.New(msg)
}

func printJSON(w io.Writer, b []byte) error {
	var buf bytes.Buffer
	if err := json.Indent(&buf, b, "", "  "); err != nil {
		_, err = w.Write(b)
		return err
	}
	buf.WriteByte('\n')
	_, err := buf.WriteTo(w)
	return err
}

func printEndpoints(w io.Writer, b []byte) error {
	var list struct {
		Endpoints []struct {
			ID, URL, Description, DisabledReason string
			Filters                              []string
			Disabled                             bool
			FailingSince                         int64
		}
	}
	if err := json.Unmarshal(b, &list); err != nil {
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tURL\tFILTERS\tHEALTH")
	for _, e := range list.Endpoints {
		health := "ok"
		switch {
		case e.Disabled && e.DisabledReason != "":
			health = "disabled: " + e.DisabledReason
		case e.Disabled:
			health = "disabled"
		case e.FailingSince != 0:
			health = "failing since " + time.UnixMilli(e.FailingSince).UTC().Format(time.RFC3339)
		}
		filters := strings.Join(e.Filters, ",")
		if filters == "" {
			filters = "*all*"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", e.ID, e.URL, filters, health)
	}
	return tw.Flush()
}
