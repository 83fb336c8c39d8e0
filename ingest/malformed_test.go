package ingest_test

import (
	"bytes"
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/kilnhq/kiln/connect"
	"github.com/kilnhq/kiln/ingest"
	"github.com/kilnhq/kiln/schemas"
	"github.com/kilnhq/kiln/schemas/rejections"
	"github.com/kilnhq/kiln/testsupport"
)

// rawPost posts body as it is and returns the answer's status, content
// type and bytes.
func (h *harness) rawPost(t *testing.T, contentType string, body []byte, headers ...string) (int, string, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, h.url+"/events", bytes.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Content-Type", contentType)
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	var b bytes.Buffer
	_, err = b.ReadFrom(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, resp.Header.Get("Content-Type"), b.String()
}

// malformedRecords waits until REJECTIONS holds at least n records that
// cannot be recovered and returns them, oldest first.
func (h *harness) malformedRecords(t *testing.T, n int) []rejections.Record {
	t.Helper()
	var recs []rejections.Record
	require.Eventually(t, func() bool {
		recs = recs[:0]
		for _, r := range h.records(t) {
			if !r.CanRecover() {
				recs = append(recs, r)
			}
		}
		return len(recs) >= n
	}, 2*time.Minute, 20*time.Millisecond)
	return recs
}

// recordsFailed is kiln_ingest_rejection_records_failed_total{outcome}.
func (h *harness) recordsFailed(t *testing.T, outcome rejections.Outcome) int {
	t.Helper()
	mfs, err := h.reg.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() != "kiln_ingest_rejection_records_failed_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "outcome" && l.GetValue() == string(outcome) {
					return int(m.GetCounter().GetValue())
				}
			}
		}
	}
	return 0
}

// Issue 24: a body that is not well-formed JSON, and an NDJSON line that
// is not, is kept in REJECTIONS as sent (type and id unknown, the reason
// ingest answered, the key id, the time) and marked recoverable:false; the
// client's answer is what it always was; recover skips such records and
// says why.
func TestMalformedBodiesAreRecorded(t *testing.T) {
	h := newHarness(t, nil)
	const garbage = `{"eventType":"page_view","userId":` + "\x01"
	status, ctype, body := h.rawPost(t, "application/json", []byte(garbage), "Authorization", "Bearer some-key")
	require.Equal(t, http.StatusBadRequest, status)
	require.Equal(t, "application/problem+json", ctype)
	// Exactly the answer before records were kept.
	require.JSONEq(t, `{"type":"https://kiln.dev/problems/malformed-json","title":"Malformed JSON","status":400,`+
		`"detail":"malformed JSON: invalid character '\\x01' looking for beginning of value (at byte 35)","instance":"/events"}`, body)

	// NDJSON: the good line is stored, the bad one refused alone.
	status, _, body = h.rawPost(t, "application/x-ndjson",
		[]byte(`{"eventType":"page_view","userId":"u","timestamp":1700000000000}`+"\n"+`not json at all`+"\n"))
	require.Equal(t, http.StatusAccepted, status, body)
	require.Contains(t, body, `"rejected":1`)
	require.EqualValues(t, 1, h.count(t, schemas.SubjectAll))

	recs := h.malformedRecords(t, 2)
	require.Len(t, recs, 2)
	byBody := map[string]rejections.Record{}
	for _, r := range recs {
		byBody[string(r.Body)] = r
	}
	whole, ok := byBody[garbage]
	require.True(t, ok, "the body as sent: %q", recs)
	require.Equal(t, rejections.Rejected, whole.Outcome)
	require.Empty(t, whole.EventType, "no type can be read from it")
	require.Empty(t, whole.ID)
	require.Equal(t, rejections.KeyID("some-key"), whole.KeyID)
	require.WithinDuration(t, time.Now(), whole.Time, time.Minute)
	require.Len(t, whole.Reasons, 1)
	require.Contains(t, whole.Reasons[0].Message, "malformed JSON")
	require.False(t, whole.Truncated)
	line, ok := byBody["not json at all"]
	require.True(t, ok, "the line as sent: %q", recs)
	require.Contains(t, line.Reasons[0].Message, "malformed JSON")

	// recover skips them, saying why; nothing is stored.
	nc, err := connect.NATS(h.nats.URL(), "recover", connect.Append, testsupport.Logger(t))
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	var got []ingest.RecoveredEvent
	require.NoError(t, ingest.Recover(context.Background(), nc, h.config, ingest.RecoverOptions{}, testsupport.Logger(t),
		func(e ingest.RecoveredEvent) { got = append(got, e) }))
	require.Len(t, got, 2)
	for _, e := range got {
		require.Equal(t, ingest.Unrecoverable, e.Outcome)
		require.Contains(t, e.Why, "not well-formed JSON")
	}
	require.EqualValues(t, 1, h.count(t, schemas.SubjectAll))
}

// A malformed body larger than the server's max_payload (here the body
// limit is above it) is kept cut to fit, truncated with the size sent;
// a flood of large garbage is sampled (at most about 1 MiB a second is
// recorded, after a burst of 4 MiB), never queued without bound.
func TestMalformedBodyTruncatedAndFloodSampled(t *testing.T) {
	h := newHarness(t, func(c *ingest.Config) { c.MaxBodyBytes = 3 << 20 })
	big := append([]byte("["), bytes.Repeat([]byte("x"), 3<<19)...) // 1.5 MiB, not JSON
	status, _, body := h.rawPost(t, "application/json", big)
	require.Equal(t, http.StatusBadRequest, status, body)
	rec := h.malformedRecords(t, 1)[0]
	require.True(t, rec.Truncated)
	require.Equal(t, len(big), rec.BodyBytes)
	require.True(t, bytes.HasPrefix(big, rec.Body))
	require.Greater(t, len(rec.Body), 1<<19)

	// 1 MiB bodies as fast as the client goes: what is left of the burst
	// after the first (4 MiB - ~1 MiB), then 1 MiB a second, is recorded;
	// the others are counted as records not stored.
	garbage := []byte("{" + strings.Repeat("y", 1<<20-64))
	start := time.Now()
	const sent = 24
	for range sent {
		status, _, _ := h.rawPost(t, "application/json", garbage)
		require.Equal(t, http.StatusBadRequest, status)
	}
	elapsed := time.Since(start)
	n := 0
	require.Eventually(t, func() bool {
		n = len(h.malformedRecords(t, 1)) - 1
		return n+h.recordsFailed(t, rejections.Rejected) == sent
	}, 2*time.Minute, 100*time.Millisecond, "every body recorded or counted")
	limit := 4 + int(elapsed.Seconds()) + 1
	t.Logf("%d of %d large malformed bodies recorded in %s (bound %d)", n, sent, elapsed, limit)
	require.LessOrEqual(t, n, limit)
	require.Less(t, n, sent, "sampled")
}
