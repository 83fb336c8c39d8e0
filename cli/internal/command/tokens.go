package command

import (
	"fmt"
	"time"

	"github.com/caarlos0/env/v11"
	"github.com/spf13/cobra"

	"github.com/kilnhq/kiln/httpserver/tokens"
)

// tokensCommand is `kiln tokens`: subscriber tokens for browsers.
func tokensCommand(io IO) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "tokens",
		Short:   "Mint subscriber tokens: short-lived, signed, read-only credentials for browsers",
		Example: `  KILN_TOKEN_SECRETS=$SECRET kiln tokens mint --type 'order.*' --user u1 --ttl 15m`,
	}
	var (
		types   []string
		user    string
		subject string
		ttl     time.Duration
	)
	mint := &cobra.Command{
		Use:   "mint",
		Short: "Print a subscriber token signed with the first secret of KILN_TOKEN_SECRETS",
		Long: `Print a subscriber token (a JWT, HS256) signed with the first secret of
KILN_TOKEN_SECRETS, carrying KILN_TOKEN_AUDIENCE and KILN_TOKEN_ISSUER when set.
Its holder reads only events of the --type patterns (and, with --user, only that
user's events) on GET /events, GET /stream, Socket.IO and gRPC Subscribe, until
it expires. A customer's backend usually mints them itself with any JWT library
(docs/security.md, "Browsers"); this command is for trying it out and for scripts.`,
		Example: `  KILN_TOKEN_SECRETS=$SECRET kiln tokens mint --type 'order.*' --user u1 --ttl 15m
  curl -N "http://127.0.0.1:8080/stream?access_token=$(kiln tokens mint --type 'page.*')"`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := env.ParseAsWithOptions[tokens.Config](env.Options{Environment: io.Env})
			if err != nil {
				return fmt.Errorf("token settings: %w", err)
			}
			k, err := tokens.NewKeyring(cfg)
			if err != nil {
				return err
			}
			if k == nil {
				return fmt.Errorf("KILN_TOKEN_SECRETS is not set: it holds the secret(s) tokens are signed with")
			}
			tok, err := k.Sign(tokens.Mint{Types: types, UserID: user, Subject: subject, TTL: ttl}, time.Now())
			if err != nil {
				return fmt.Errorf("--type: %w", err)
			}
			_, err = fmt.Fprintln(io.Out, tok)
			return err
		},
	}
	mint.Flags().StringSliceVar(&types, "type", nil, "event-type pattern the token reads (repeatable; order.*, page.>)")
	mint.Flags().StringVar(&user, "user", "", "read only this userId's events")
	mint.Flags().StringVar(&subject, "subject", "", "the token's sub claim (who it was minted for)")
	mint.Flags().DurationVar(&ttl, "ttl", 15*time.Minute, "how long the token is valid")
	_ = mint.MarkFlagRequired("type")
	cmd.AddCommand(mint)
	return cmd
}
