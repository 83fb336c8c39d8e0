package cli_test

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/kilnhq/kiln/app/standalone/standalonetest"
	"github.com/kilnhq/kiln/cli/internal/command"
)

// TestCLIFindsARunningStandaloneWithoutFlags: the standalone names its
// stores in its data folder and the CLI reads them from KILN_DATA_DIR.
func TestCLIFindsARunningStandaloneWithoutFlags(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	in := standalonetest.Start(t, dir)
	publish(t, in.NATSURL, 5)
	env := map[string]string{"KILN_DATA_DIR": dir}
	var out, errOut bytes.Buffer
	err := command.Execute(context.Background(), []string{"stream", "info"},
		command.IO{In: strings.NewReader(""), Out: &out, Err: &errOut, Env: env})
	require.NoError(t, err, errOut.String())
	require.Contains(t, out.String(), "5")
	out.Reset()
	err = command.Execute(context.Background(), []string{"projections"},
		command.IO{In: strings.NewReader(""), Out: &out, Err: &errOut, Env: env})
	require.NoError(t, err, errOut.String())
	require.Contains(t, out.String(), "counters")

	require.Contains(t, out.String(), "recent")
}
