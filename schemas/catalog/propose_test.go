package catalog_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/kilnhq/kiln/schemas/catalog"
	"github.com/kilnhq/kiln/testsupport"
)

func TestProposeChecksRulesAndStoredEvents(t *testing.T) {
	ctx := context.Background()
	c := open(t, testsupport.StartNATS(t))
	loose := strings.Replace(signup, `"required":["plan"],`, "", 1)
	d, err := c.Propose(ctx, catalog.Proposal{Type: "signup.completed", Schema: []byte(loose)}, catalog.Backward, nil, 0)
	require.NoError(t, err)
	require.True(t, d.Registered)
	require.Equal(t, 1, d.Version.Version)

	stored := func(_ context.Context, typ string, n int) ([]json.RawMessage, error) {
		require.Equal(t, "signup.completed", typ)
		require.Equal(t, 100, n)
		return []json.RawMessage{
			json.RawMessage(`{"id":"has-plan","eventType":"signup.completed","userId":"u","timestamp":1,"receivedAt":2,"seq":1,"metadata":{"plan":"pro"}}`),
			json.RawMessage(`{"id":"no-plan","eventType":"signup.completed","userId":"u","timestamp":1,"receivedAt":2,"seq":2,"metadata":{}}`),
		}, nil
	}
	strict := []byte(signup) // requires metadata.plan: BACKWARD breaks, one stored event fails
	cases := []struct {
		name       string
		p          catalog.Proposal
		mode       catalog.Mode
		registered bool
		refused    bool
		version    int
	}{
		{"refused", catalog.Proposal{Type: "signup.completed", Schema: strict}, catalog.Backward, false, true, 1},
		{"a dry run of the same", catalog.Proposal{Type: "signup.completed", Schema: strict, DryRun: true}, catalog.Backward, false, true, 1},
		{"NONE still checks the stored events", catalog.Proposal{Type: "signup.completed", Schema: strict}, catalog.None, false, true, 1},
		{"forced dry run", catalog.Proposal{Type: "signup.completed", Schema: strict, DryRun: true, Force: true, Reason: "r"}, catalog.Backward, false, false, 1},
		{"forced with a reason", catalog.Proposal{Type: "signup.completed", Schema: strict, Force: true, Reason: "plans are mandatory"}, catalog.Backward, true, false, 2},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d, err := c.Propose(ctx, tc.p, tc.mode, stored, 100)
			require.NoError(t, err)
			require.Equal(t, tc.registered, d.Registered)
			require.Equal(t, tc.refused, d.Refused)
			require.Equal(t, 1, d.History.Failing)
			require.Equal(t, "no-plan", d.History.Examples[0].ID)
			require.Equal(t, map[string]int{"metadata.plan": 1}, d.History.ByField)
			latest, _, err := c.Latest(ctx, "signup.completed")
			require.NoError(t, err)
			require.Equal(t, tc.version, latest.Version)
		})
	}
	latest, _, err := c.Latest(ctx, "signup.completed")
	require.NoError(t, err)
	require.True(t, latest.Forced)
	require.Equal(t, "plans are mandatory", latest.Reason)

	_, err = c.Propose(ctx, catalog.Proposal{Type: "signup.completed", Schema: []byte(loose), Force: true}, catalog.Backward, stored, 100)
	require.ErrorIs(t, err, catalog.ErrReasonRequired)

	require.NoError(t, c.SetSettings(ctx, catalog.Settings{Type: "signup.completed", Compatibility: catalog.Forward}))
	d, err = c.Propose(ctx, catalog.Proposal{Type: "signup.completed", Schema: []byte(loose), DryRun: true}, catalog.Backward, stored, 100)
	require.NoError(t, err)
	require.Equal(t, catalog.Forward, d.Mode, "the type's own mode wins over the default")
	require.True(t, d.Refused, "FORWARD refuses dropping a required field")
}
