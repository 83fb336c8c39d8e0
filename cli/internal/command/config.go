package command

import (
	"fmt"
	"log/slog"
	"strings"

	"github.com/spf13/cobra"

	"github.com/kilnhq/kiln/cli/internal/config"
)

// configCommand is `kiln config`: every setting, and the check for
// misspelt ones.
func configCommand(io IO) *cobra.Command {
	var markdown bool
	cmd := &cobra.Command{
		Use:   "config [role]",
		Short: "Print every setting: its value (secrets redacted), where it came from, its default, the roles that read it",
		Long: `Print every environment variable Kiln reads, or those one role reads: its
value in this environment (secrets redacted, URLs without their password),
whether it came from the environment or is the default, the default and the
roles that read it. "kiln config check" reports the variables with Kiln's
prefixes that nothing reads; --markdown prints the tables of
docs/configuration.md.

Roles: ` + strings.Join(config.Readers(), ", ") + `.`,
		Example: `  kiln config
  kiln config ingest
  INGEST_MAX_BATCHH=10 kiln config check`,
		Args:      cobra.MatchAll(cobra.MaximumNArgs(1), cobra.OnlyValidArgs),
		ValidArgs: config.Readers(),
		RunE: func(cmd *cobra.Command, args []string) error {
			reg, err := config.New()
			if err != nil {
				return err
			}
			if markdown {
				if len(args) > 0 {
					return fmt.Errorf("--markdown prints every setting: name no role")
				}
				return reg.WriteMarkdown(io.Out)
			}
			role := ""
			if len(args) > 0 {
				role = args[0]
			}
			return config.WriteTable(io.Out, reg.Values(io.Env, role))
		},
	}
	cmd.Flags().BoolVar(&markdown, "markdown", false, "print the tables of docs/configuration.md")
	cmd.AddCommand(&cobra.Command{
		Use:   "check",
		Short: "Report the variables with Kiln's prefixes that no role reads, with the nearest known name; exit 1 if any",
		Long: `Report the environment variables that look like Kiln settings but are none:
every one with a prefix Kiln owns (` + prefixes() + `) that no role
reads, and any one edit from a known name (MONGO_URL for MONGO_URI), each with
the nearest known name. Exits 1 when there is one. kiln run and kiln serve
log the same as warnings at start and run on.`,
		Example: "  INGEST_MAX_BATCHH=10 kiln config check",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			reg, err := config.New()
			if err != nil {
				return err
			}
			unknown := reg.Unknown(io.Env)
			for _, u := range unknown {
				line := u.Name + ": no Kiln setting has this name"
				if u.Suggestion != "" {
					line += "; did you mean " + u.Suggestion + "?"
				}
				fmt.Fprintln(io.Out, line)
			}
			if len(unknown) > 0 {
				return fmt.Errorf("config check: %d unknown variable(s)", len(unknown))
			}
			_, err = fmt.Fprintln(io.Out, "no unknown variables")
			return err
		},
	})
	return cmd
}

// prefixes are Kiln's own prefixes, for the help text.
func prefixes() string {
	reg, err := config.New()
	if err != nil {
		return err.Error()
	}
	return strings.Join(reg.Prefixes(), ", ")
}

// warnUnknown logs a warning per variable of env that looks like a Kiln
// setting but is none (kiln config check), at the start of kiln run and
// kiln serve; they run on.
func warnUnknown(env map[string]string, log *slog.Logger) {
	reg, err := config.New()
	if err != nil {
		log.Warn("config: cannot check the variables", "err", err)
		return
	}
	for _, u := range reg.Unknown(env) {
		attrs := []any{"name", u.Name}
		if u.Suggestion != "" {
			attrs = append(attrs, "did_you_mean", u.Suggestion)
		}
		log.Warn("config: unknown variable, ignored (kiln config check)", attrs...)
	}
}
