package cli_test

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"github.com/stretchr/testify/require"

	"github.com/kilnhq/kiln/app/serve"
	"github.com/kilnhq/kiln/cli/internal/command"
)

// execute runs kiln with args in env and returns its output.
func execute(t *testing.T, env map[string]string, args ...string) (string, error) {
	t.Helper()
	var out bytes.Buffer
	err := command.Execute(context.Background(), args,
		command.IO{In: strings.NewReader(""), Out: &out, Err: &out, Env: env, Version: "v1.2.3-test"})
	return out.String(), err
}

// TestEveryCommandSaysWhatItDoesWithAnExample walks the command tree.
func TestEveryCommandSaysWhatItDoesWithAnExample(t *testing.T) {
	var walk func(*cobra.Command)
	var seen int
	var lacking []string
	walk = func(c *cobra.Command) {
		seen++
		if c.Short == "" || c.Example == "" {
			lacking = append(lacking, c.CommandPath())
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(command.NewRoot(command.IO{Env: map[string]string{}}))
	require.Empty(t, lacking, "commands without a Short or an Example")
	require.Greater(t, seen, 25, "the whole tree was walked")

	help, err := execute(t, nil, "--help")
	require.NoError(t, err)
	for _, name := range []string{"run", "serve", "replay", "projections", "stream", "events", "dlq", "webhooks", "rules", "tokens", "healthcheck", "version"} {
		require.Contains(t, help, "\n  "+name+" ", "kiln --help lists %s", name)
	}
	help, err = execute(t, nil, "serve", "--help")
	require.NoError(t, err)
	for _, role := range serve.RoleNames() {
		require.Contains(t, help, "\n  "+role+" ", "kiln serve --help lists %s", role)
	}
}

func TestVersion(t *testing.T) {
	for _, args := range [][]string{{"--version"}, {"version"}} {
		out, err := execute(t, nil, args...)
		require.NoError(t, err)
		require.Equal(t, "v1.2.3-test\n", out)
	}
}

func TestHealthcheck(t *testing.T) {
	status := http.StatusOK
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(status)
	}))
	t.Cleanup(srv.Close)
	_, err := execute(t, nil, "healthcheck", srv.URL+"/readyz")
	require.NoError(t, err)
	status = http.StatusServiceUnavailable
	_, err = execute(t, nil, "healthcheck", srv.URL+"/readyz")
	require.ErrorContains(t, err, "503")
	_, err = execute(t, nil, "healthcheck")
	require.ErrorContains(t, err, "accepts 1 arg")
	srv.Close()
	_, err = execute(t, nil, "healthcheck", srv.URL+"/readyz")
	require.Error(t, err, "nothing listening")
}

func TestRulesCheck(t *testing.T) {
	out, err := execute(t, nil, "rules", "check")
	require.NoError(t, err)
	require.Equal(t, "3 rules ok: payment-failed-burst, big-order, order-canceled-fraud\n", out)

	bad := filepath.Join(t.TempDir(), "rules.yaml")
	require.NoError(t, os.WriteFile(bad, []byte("rules:\n  - {name: loud, match: {type: x}, channels: [pager]}\n"), 0o600))
	env := map[string]string{"NOTIFIER_RULES_FILE": bad}
	_, err = execute(t, env, "rules", "check")
	require.ErrorContains(t, err, `rule "loud" (rules[0], line 2): channels[0]: channel "pager" is not configured`)

	// The notifier refuses to start on the same file, before connecting anywhere.
	env["NATS_URL"] = "nats://127.0.0.1:1"
	_, err = execute(t, env, "serve", "notifier")
	require.ErrorContains(t, err, `rule "loud"`)
}

func TestServeRefusesBadSettings(t *testing.T) {
	_, err := execute(t, nil, "serve")
	require.ErrorContains(t, err, "name a role: ingest, projector, notifier, gateway, webhooks, realtime")
	_, err = execute(t, nil, "serve", "frobnicate")
	require.Error(t, err)
	_, err = execute(t, map[string]string{"LOG_LEVEL": "loud"}, "serve", "ingest")
	require.ErrorContains(t, err, "LOG_LEVEL must be debug, info, warn or error")
	_, err = execute(t, map[string]string{"LOG_FORMAT": "xml"}, "run")
	require.ErrorContains(t, err, "LOG_FORMAT must be text or json")
	_, err = execute(t, map[string]string{"WEBHOOKS_CONCURRENCY": "0"}, "serve", "webhooks")
	require.ErrorContains(t, err, "webhooks config: WEBHOOKS_CONCURRENCY")
	_, err = execute(t, map[string]string{"GRPC_MAX_MESSAGE_BYTES": "1"}, "serve", "realtime")
	require.ErrorContains(t, err, "realtime config: GRPC_MAX_MESSAGE_BYTES")
	_, err = execute(t, map[string]string{"INGEST_MAX_BATCH": "0"}, "serve", "realtime")
	require.ErrorContains(t, err, "realtime config: INGEST_MAX_BATCH", "realtime appends through ingest's path and settings")
	for _, args := range [][]string{{"serve", "gateway"}, {"serve", "realtime"}, {"run"}} {
		_, err = execute(t, map[string]string{"KILN_TOKEN_SECRETS": "short"}, args...)
		require.ErrorContains(t, err, "KILN_TOKEN_SECRETS: secret 1 is 5 bytes", args)
	}
	for _, role := range []string{"ingest", "realtime"} {
		_, err = execute(t, map[string]string{"KILN_PUBLISHABLE_KEYS": "pk_0123456789abcdef types=page.*"}, "serve", role)
		require.ErrorContains(t, err, "KILN_PUBLISHABLE_KEYS entry 1: origins= is required", role)
	}
}
