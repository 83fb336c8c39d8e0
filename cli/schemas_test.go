package cli_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/kilnhq/kiln/app/standalone/standalonetest"
)

// The schema commands against kiln run: list the seeded types, push a new
// type, check and refuse a breaking change, force it with a reason, and
// read its history.
func TestSchemasCommands(t *testing.T) {
	t.Parallel()
	in := standalonetest.Start(t, t.TempDir(), "KILN_ADMIN_KEYS", "adm-1")
	dir := t.TempDir()
	write := func(name, doc string) string {
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, []byte(doc), 0o600))
		return p
	}
	admin := []string{"--url", in.Base, "--admin-key", "adm-1"}

	out, err := kiln(t.Context(), in, append([]string{"schemas", "list"}, admin...)...)
	require.NoError(t, err, out)
	require.Contains(t, out, "order.created")
	require.Contains(t, out, "BACKWARD")

	v1 := write("signup.completed.json", `{"allOf":[{"$ref":"envelope.json"}],"properties":{"metadata":{"type":"object"}}}`)
	_, err = kiln(t.Context(), in, "schemas", "push", v1, "--url", in.Base)
	require.ErrorContains(t, err, "401", "pushes need the admin key")
	out, err = kiln(t.Context(), in, append([]string{"schemas", "push", v1}, admin...)...)
	require.NoError(t, err, out)
	require.Contains(t, out, `"registered": true`)

	v2 := write("v2.json", `{"allOf":[{"$ref":"envelope.json"}],"required":["metadata"],"properties":{"metadata":{"type":"object"}}}`)
	out, err = kiln(t.Context(), in, append([]string{"schemas", "check", v2, "--type", "signup.completed"}, admin...)...)
	require.ErrorContains(t, err, "refused", out)
	require.Contains(t, out, "required-added")
	out, err = kiln(t.Context(), in, append([]string{"schemas", "push", v2, "--type", "signup.completed", "--force"}, admin...)...)
	require.ErrorContains(t, err, "reason", out)
	out, err = kiln(t.Context(), in, append([]string{"schemas", "push", v2, "--type", "signup.completed", "--force", "--reason", "metadata is mandatory"}, admin...)...)
	require.NoError(t, err, out)
	require.Contains(t, out, `"version": 2`)

	out, err = kiln(t.Context(), in, append([]string{"schemas", "history", "signup.completed"}, admin...)...)
	require.NoError(t, err, out)
	require.Contains(t, out, "metadata is mandatory")
	out, err = kiln(t.Context(), in, append([]string{"schemas", "show", "signup.completed", "--version", "1"}, admin...)...)
	require.NoError(t, err, out)
	require.Contains(t, out, `"version": 1`)
}
