package cli_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/kilnhq/kiln/httpserver/tokens"
)

// TestTokensMint mints a token and verifies it as the server does.
func TestTokensMint(t *testing.T) {
	const secret = "cli-test-secret-0123456789abcdef0123"
	env := map[string]string{"KILN_TOKEN_SECRETS": secret, "KILN_TOKEN_AUDIENCE": "shop"}
	out, err := execute(t, env, "tokens", "mint", "--type", "order.*", "--type", "page.view", "--user", "u1", "--ttl", "15m")
	require.NoError(t, err)
	k, err := tokens.NewKeyring(tokens.Config{Secrets: []string{secret}, Audience: "shop"})
	require.NoError(t, err)
	c, err := k.Verify(strings.TrimSpace(out))
	require.NoError(t, err)
	require.Equal(t, []string{"order.*", "page.view"}, c.Types)
	require.Equal(t, "u1", c.UserID)

	_, err = execute(t, map[string]string{}, "tokens", "mint", "--type", "order.*")
	require.ErrorContains(t, err, "KILN_TOKEN_SECRETS is not set")
	_, err = execute(t, env, "tokens", "mint", "--type", "order..x")
	require.ErrorContains(t, err, "--type")
	_, err = execute(t, env, "tokens", "mint")
	require.ErrorContains(t, err, `"type" not set`)
}
