package ingest_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/kilnhq/kiln/ingest"
	"github.com/kilnhq/kiln/schemas"
	"github.com/kilnhq/kiln/schemas/catalog"
	"github.com/kilnhq/kiln/schemas/rejections"
	"github.com/kilnhq/kiln/testsupport"
)

const (
	badOrder  = `{"id":"q-1","eventType":"order.created","userId":"u","timestamp":1700000000000,"metadata":{"id":"o1","status":"new","amount":-5,"currency":"EUR","customerEmail":"a@b.co","createdAt":1}}`
	goodOrder = `{"id":"q-2","eventType":"order.created","userId":"u","timestamp":1700000000000,"metadata":{"id":"o2","status":"new","amount":5,"currency":"EUR","customerEmail":"a@b.co","createdAt":1}}`
)

// records returns every record of the REJECTIONS stream, oldest first.
func (h *harness) records(t *testing.T) []rejections.Record {
	t.Helper()
	var recs []rejections.Record
	require.NoError(t, rejections.Each(context.Background(), h.js, rejections.Query{}, func(r rejections.Record) error {
		recs = append(recs, r)
		return nil
	}))
	return recs
}

// quarantined returns the quarantined records, oldest first.
func (h *harness) quarantined(t *testing.T) []rejections.Record {
	t.Helper()
	var q []rejections.Record
	for _, r := range h.records(t) {
		if r.Outcome == rejections.Quarantined {
			q = append(q, r)
		}
	}
	return q
}

// Issue 24 item 4: a type under enforcement quarantine answers 202 with
// "quarantined":true; the event is kept in REJECTIONS with its reasons,
// as sent, and not in EVENTS.
func TestQuarantineKeepsTheEventOutOfTheStream(t *testing.T) {
	ns := testsupport.StartNATS(t)
	h := startHarness(t, ns, nil, true)
	ctx := context.Background()
	cat, err := catalog.Open(ctx, ns.JetStream(t), schemas.StreamOptions{})
	require.NoError(t, err)
	require.NoError(t, cat.SetSettings(ctx, catalog.Settings{Type: "order.created", Enforcement: catalog.Quarantine}))

	var r response
	require.Eventually(t, func() bool {
		r = h.post(t, "application/json", badOrder, "Authorization", "Bearer some-key")
		return r.status == http.StatusAccepted
	}, 2*time.Minute, 20*time.Millisecond, "never quarantined: %v", r.body)
	require.Equal(t, map[string]any{"accepted": true, "id": "q-1", "seq": 0.0, "duplicate": false, "quarantined": true}, r.body)
	require.Zero(t, h.count(t, schemas.SubjectAll))
	// The 400s before the setting arrived are records too, rejected ones.
	recs := h.quarantined(t)
	require.Len(t, recs, 1)
	rec := recs[0]
	require.Equal(t, rejections.Quarantined, rec.Outcome)
	require.Equal(t, "q-1", rec.ID)
	require.True(t, rec.ClientID)
	require.Equal(t, "order.created", rec.EventType)
	require.Equal(t, badOrder, string(rec.Body))
	require.Equal(t, "metadata.amount", rec.Reasons[0].Field)
	require.Equal(t, rejections.KeyID("some-key"), rec.KeyID)
	require.NotContains(t, rec.KeyID, "some-key")

	// A batch: one stored, one quarantined (an id assigned and answered),
	// one refused by the envelope (a 400 item, recorded as rejected).
	r = h.post(t, "application/json", `[`+goodOrder+`,`+
		`{"eventType":"order.created","userId":"u","timestamp":1700000000000,"metadata":{}},`+
		`{"eventType":"order.created","timestamp":1700000000000}]`)
	require.Equal(t, http.StatusAccepted, r.status, "%v", r.body)
	require.EqualValues(t, 1, r.body["accepted"])
	require.EqualValues(t, 1, r.body["quarantined"])
	require.EqualValues(t, 1, r.body["rejected"])
	results := r.body["results"].([]any)
	q := results[1].(map[string]any)
	require.Equal(t, true, q["quarantined"])
	require.NotEmpty(t, q["id"])
	require.NotContains(t, results[0].(map[string]any), "quarantined")
	require.EqualValues(t, 1, h.count(t, schemas.SubjectAll))
	recs = h.quarantined(t)
	require.Len(t, recs, 2)
	require.Equal(t, q["id"], recs[1].ID)
	require.False(t, recs[1].ClientID)
	require.Eventually(t, func() bool {
		for _, r := range h.records(t) {
			if r.Outcome == rejections.Rejected && r.HasField("userId") {
				return true
			}
		}
		return false
	}, time.Minute, 10*time.Millisecond)

	// Without the REJECTIONS stream a quarantined event is not kept: 503,
	// never "accepted".
	require.NoError(t, h.js.DeleteStream(ctx, rejections.StreamName))
	r = h.post(t, "application/json", badOrder)
	requireProblem(t, r, http.StatusServiceUnavailable)
	require.NotEmpty(t, r.header.Get("Retry-After"))
	require.EqualValues(t, 1, h.count(t, schemas.SubjectAll))
}

// Enforcement reject answers 400 as before and records the event;
// enforcement none stores it after the envelope's checks.
func TestRejectRecordsAndNoneAccepts(t *testing.T) {
	h := newHarness(t, nil)
	r := h.post(t, "application/json", badOrder)
	requireProblem(t, r, http.StatusBadRequest)
	require.Equal(t, "Invalid event format", r.body["title"])
	require.Eventually(t, func() bool { return len(h.records(t)) == 1 }, time.Minute, 10*time.Millisecond)
	rec := h.records(t)[0]
	require.Equal(t, rejections.Rejected, rec.Outcome)
	require.Equal(t, "q-1", rec.ID)
	require.Equal(t, badOrder, string(rec.Body))
	require.Zero(t, h.count(t, schemas.SubjectAll))

	h = newHarness(t, func(c *ingest.Config) { c.Schemas.Enforcement = "none" })
	r = h.post(t, "application/json", badOrder)
	require.Equal(t, http.StatusAccepted, r.status, "%v", r.body)
	require.NotContains(t, r.body, "quarantined")
	require.EqualValues(t, 1, h.count(t, schemas.SubjectAll))
	// The envelope still holds.
	requireProblem(t, h.post(t, "application/json", `{"eventType":"order.created","timestamp":1}`), http.StatusBadRequest)
}

// SCHEMAS_UNKNOWN_TYPES=reject refuses types with no schema, naming
// eventType; the default accepts them.
func TestUnknownTypesSetting(t *testing.T) {
	const plain = `{"eventType":"plain.click","userId":"u","timestamp":1700000000000}`
	h := newHarness(t, func(c *ingest.Config) { c.Schemas.UnknownTypes = "reject" })
	r := h.post(t, "application/json", plain)
	requireProblem(t, r, http.StatusBadRequest)
	require.Equal(t, "eventType", r.body["errors"].([]any)[0].(map[string]any)["field"])
	require.Equal(t, http.StatusAccepted, h.post(t, "application/json", goodOrder).status)

	h = newHarness(t, nil)
	require.Equal(t, http.StatusAccepted, h.post(t, "application/json", plain).status)
	_, err := ingest.LoadConfig(map[string]string{"SCHEMAS_UNKNOWN_TYPES": "maybe"})
	require.ErrorContains(t, err, "SCHEMAS_UNKNOWN_TYPES")
	_, err = ingest.LoadConfig(map[string]string{"REJECTIONS_MAX_AGE": "1s"})
	require.ErrorContains(t, err, "REJECTIONS_MAX_AGE")
}
