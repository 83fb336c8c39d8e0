package ingest_test

import (
	"context"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/kilnhq/kiln/connect"
	"github.com/kilnhq/kiln/ingest"
	"github.com/kilnhq/kiln/schemas"
	"github.com/kilnhq/kiln/schemas/catalog"
	"github.com/kilnhq/kiln/testsupport"
)

// Issue 24 item 5: quarantine, then recover against a looser version:
// each event stored once, across a repeat of the recover and a client
// retry of the same id.
func TestRecoverStoresEachQuarantinedEventOnce(t *testing.T) {
	ns := testsupport.StartNATS(t)
	h := startHarness(t, ns, nil, true)
	ctx := context.Background()
	cat, err := catalog.Open(ctx, ns.JetStream(t), schemas.StreamOptions{})
	require.NoError(t, err)
	require.NoError(t, cat.SetSettings(ctx, catalog.Settings{Type: "order.created", Enforcement: catalog.Quarantine}))
	require.Eventually(t, func() bool {
		return h.post(t, "application/json", badOrder).status == http.StatusAccepted
	}, 2*time.Minute, 20*time.Millisecond)
	// One without an id: recovered under the id it was answered.
	r := h.post(t, "application/json", `{"eventType":"order.created","userId":"u","timestamp":1700000000000,"metadata":{"amount":-1}}`)
	require.Equal(t, http.StatusAccepted, r.status, "%v", r.body)
	assigned := r.body["id"].(string)
	require.Zero(t, h.count(t, schemas.SubjectAll))

	nc, err := connect.NATS(ns.URL(), "recover", connect.Append, testsupport.Logger(t))
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	recover := func(opts ingest.RecoverOptions) map[string][]ingest.RecoveredEvent {
		byOutcome := map[string][]ingest.RecoveredEvent{}
		require.NoError(t, ingest.Recover(ctx, nc, h.config, opts, testsupport.Logger(t), func(e ingest.RecoveredEvent) {
			byOutcome[e.Outcome] = append(byOutcome[e.Outcome], e)
		}))
		return byOutcome
	}

	// Nothing passes the version in force yet.
	got := recover(ingest.RecoverOptions{Type: "order.created"})
	require.Empty(t, got[ingest.Recovered])
	require.NotEmpty(t, got[ingest.StillFailing])
	require.Equal(t, "metadata.amount", got[ingest.StillFailing][0].Reasons[0].Field)

	// A looser version: amount may be negative, the rest optional.
	_, _, err = cat.Push(ctx, "order.created", []byte(`{"allOf":[{"$ref":"envelope.json"}],
		"properties":{"metadata":{"type":"object","properties":{"amount":{"type":"number"}}}}}`), "looser", true)
	require.NoError(t, err)
	got = recover(ingest.RecoverOptions{Type: "order.created", DryRun: true})
	// The 400s before the setting arrived were recorded too (as rejected,
	// with the same id): recover stores each id once all the same.
	require.ElementsMatch(t, []string{"q-1", assigned}, ids(got[ingest.WouldRecover]))
	require.Zero(t, h.count(t, schemas.SubjectAll), "a dry run stores nothing")

	got = recover(ingest.RecoverOptions{Since: time.Now().Add(-time.Hour)})
	require.Len(t, got[ingest.Recovered], 2, "%v", got)
	require.ElementsMatch(t, []string{"q-1", assigned}, []string{got[ingest.Recovered][0].ID, got[ingest.Recovered][1].ID})
	require.EqualValues(t, 2, h.count(t, schemas.SubjectAll))

	got = recover(ingest.RecoverOptions{})
	require.Empty(t, got[ingest.Recovered], "a second recover is a no-op")
	require.ElementsMatch(t, []string{"q-1", assigned}, ids(got[ingest.AlreadyStored]))
	require.EqualValues(t, 2, h.count(t, schemas.SubjectAll))

	// The client retries: a duplicate of the recovered event.
	r = h.post(t, "application/json", badOrder)
	require.Equal(t, http.StatusAccepted, r.status, "%v", r.body)
	require.Equal(t, true, r.body["duplicate"])
	for _, e := range got[ingest.AlreadyStored] {
		if e.ID == "q-1" {
			require.EqualValues(t, e.Seq, r.body["seq"])
		}
	}
	require.EqualValues(t, 2, h.count(t, schemas.SubjectAll))
}

// ids are the distinct ids of events.
func ids(events []ingest.RecoveredEvent) []string {
	var out []string
	for _, e := range events {
		if !slices.Contains(out, e.ID) {
			out = append(out, e.ID)
		}
	}
	return out
}
