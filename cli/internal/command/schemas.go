package command

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
)

// schemasCommand reads and registers event schemas through the schema
// registry's API (the standalone's public port; writes need an admin key
// when KILN_ADMIN_KEYS is set).
func schemasCommand(c *conn) *cobra.Command {
	api := &adminAPI{}
	cmd := &cobra.Command{
		Use:   "schemas",
		Short: "Event schemas: list types, show and push versions, check a change against the stored events",
		Example: `  kiln schemas list
  kiln schemas check signup.completed.json
  kiln schemas push signup.completed.json
  kiln schemas history signup.completed`,
	}
	pf := cmd.PersistentFlags()
	pf.StringVar(&api.base, "url", envOr(c.io.Getenv, "KILN_URL", "http://127.0.0.1:8080"), "Kiln's HTTP base URL (env KILN_URL)")
	pf.StringVar(&api.key, "admin-key", c.io.Getenv("KILN_ADMIN_KEY"), "an admin key (pushes) or a read key (env KILN_ADMIN_KEY)")

	list := &cobra.Command{
		Use: "list", Short: "Every type with a schema: its latest version, compatibility mode and enforcement",
		Example: "  kiln schemas list --url http://127.0.0.1:8080",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			b, err := api.call(cmd, http.MethodGet, "/schemas", nil)
			if err != nil {
				return err
			}
			var types []struct {
				Type, Compatibility, Enforcement string
				Latest                           int
			}
			if err := json.Unmarshal(b, &types); err != nil {
				return fmt.Errorf("GET /schemas: %w", err)
			}
			w := tabwriter.NewWriter(c.io.Out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "TYPE\tLATEST\tCOMPATIBILITY\tENFORCEMENT")
			for _, t := range types {
				fmt.Fprintf(w, "%s\t%d\t%s\t%s\n", t.Type, t.Latest, t.Compatibility, t.Enforcement)
			}
			return w.Flush()
		},
	}
	var version int
	show := &cobra.Command{
		Use: "show TYPE [--version N]", Short: "A type's schema (the latest version, or --version N)",
		Example: "  kiln schemas show order.created\n  kiln schemas show signup.completed --version 1",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			path := "/schemas/" + url.PathEscape(args[0])
			if version > 0 {
				path += "/versions/" + strconv.Itoa(version)
			}
			b, err := api.call(cmd, http.MethodGet, path, nil)
			if err != nil {
				return err
			}
			return printJSON(c.io.Out, b)
		},
	}
	show.Flags().IntVar(&version, "version", 0, "a version number (default: the latest)")
	history := &cobra.Command{
		Use: "history TYPE", Short: "Every version of a type: when, forced or not, and why",
		Example: "  kiln schemas history signup.completed",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			b, err := api.call(cmd, http.MethodGet, "/schemas/"+url.PathEscape(args[0])+"/versions", nil)
			if err != nil {
				return err
			}
			var vs []struct {
				Version int
				Created time.Time
				Forced  bool
				Reason  string
			}
			if err := json.Unmarshal(b, &vs); err != nil {
				return fmt.Errorf("GET versions: %w", err)
			}
			w := tabwriter.NewWriter(c.io.Out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "VERSION\tCREATED\tFORCED\tREASON")
			for _, v := range vs {
				fmt.Fprintf(w, "%d\t%s\t%t\t%s\n", v.Version, v.Created.Format(time.RFC3339), v.Forced, v.Reason)
			}
			return w.Flush()
		},
	}
	var p pushFlags
	push := &cobra.Command{
		Use:   "push FILE [--type TYPE] [--dry-run] [--force --reason TEXT] [--sample N]",
		Short: "Register FILE as the next version of its type (FILE's name without .json, or --type), if its checks pass",
		Long: "The change is checked against the type's latest version (its compatibility mode) and against its most " +
			"recent stored events; a refusal lists the rules broken and the stored events that would fail. " +
			"--force registers it anyway and needs --reason, which is kept with the version.",
		Example: "  kiln schemas push signup.completed.json\n  kiln schemas push v3.json --type signup.completed --force --reason 'plan is mandatory'",
		Args:    cobra.ExactArgs(1),
		RunE:    func(cmd *cobra.Command, args []string) error { return api.push(cmd, c.io.Out, args[0], p) },
	}
	p.register(push, true)
	var cp pushFlags
	check := &cobra.Command{
		Use:     "check FILE [--type TYPE] [--sample N]",
		Short:   "What pushing FILE would do, without registering it (exit status 1 when it would be refused)",
		Example: "  kiln schemas check signup.completed.json\n  kiln schemas check v3.json --type signup.completed --sample 50000",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cp.dryRun = true
			return api.push(cmd, c.io.Out, args[0], cp)
		},
	}
	cp.register(check, false)
	cmd.AddCommand(list, show, history, push, check)
	return cmd
}

type pushFlags struct {
	typ, reason   string
	dryRun, force bool
	sample        int
}

func (p *pushFlags) register(cmd *cobra.Command, writes bool) {
	cmd.Flags().StringVar(&p.typ, "type", "", "the event type (default: FILE's name without .json)")
	cmd.Flags().IntVar(&p.sample, "sample", -1, "how many recent stored events to check (default: the server's SCHEMAS_CHECK_SAMPLE)")
	if writes {
		cmd.Flags().BoolVar(&p.dryRun, "dry-run", false, "check only; register nothing")
		cmd.Flags().BoolVar(&p.force, "force", false, "register even if the checks fail (needs --reason)")
		cmd.Flags().StringVar(&p.reason, "reason", "", "why this version; kept with it")
	}
}

// push POSTs a schema file and prints the decision; a refusal is an
// error after the decision is printed.
func (a *adminAPI) push(cmd *cobra.Command, out io.Writer, file string, p pushFlags) error {
	doc, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	typ := p.typ
	if typ == "" {
		typ = strings.TrimSuffix(filepath.Base(file), ".json")
	}
	q := url.Values{}
	if p.dryRun {
		q.Set("dryRun", "true")
	}
	if p.force {
		q.Set("force", "true")
	}
	if p.reason != "" {
		q.Set("reason", p.reason)
	}
	if p.sample >= 0 {
		q.Set("sample", strconv.Itoa(p.sample))
	}
	path := "/schemas/" + url.PathEscape(typ)
	if len(q) > 0 {
		path += "?" + q.Encode()
	}
	status, b, err := a.raw(cmd, http.MethodPost, path, doc)
	if err != nil {
		return err
	}
	if status == http.StatusConflict && bytes.Contains(b, []byte(`"decision"`)) {
		if err := printJSON(out, b); err != nil {
			return err
		}
		return fmt.Errorf("%s: refused (see the decision above); --force --reason TEXT registers it anyway", typ)
	}
	if status >= 300 {
		return a.problem(http.MethodPost, path, status, b)
	}
	return printJSON(out, b)
}

// raw sends body as it is and returns the status and body.
func (a *adminAPI) raw(cmd *cobra.Command, method, path string, body []byte) (int, []byte, error) {
	req, err := http.NewRequestWithContext(cmd.Context(), method, strings.TrimRight(a.base, "/")+path, bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	if a.key != "" {
		req.Header.Set("Authorization", "Bearer "+a.key)
	}
	resp, err := (&http.Client{Timeout: 60 * time.Second}).Do(req)
	if err != nil {
		return 0, nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}
