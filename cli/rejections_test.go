package cli_test

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/kilnhq/kiln/app/standalone/standalonetest"
)

// Issue 24 items 4 and 5 against kiln run (real NATS, Redis, FerretDB):
// a quarantined event is answered 202 "quarantined":true and not stored;
// after a looser version, `kiln rejections recover` stores it once, under
// its id, across a repeat of the recover and a client retry of the id.
func TestQuarantineThenRecoverStoresOnce(t *testing.T) {
	t.Parallel()
	in := standalonetest.Start(t, t.TempDir(), "SCHEMAS_ENFORCEMENT", "quarantine")
	const bad = `{"id":"rq-1","eventType":"order.created","userId":"u","timestamp":1700000000000,` +
		`"metadata":{"id":"o1","status":"new","amount":-5,"currency":"EUR","customerEmail":"a@b.co","createdAt":1}}`
	post := func() map[string]any {
		resp, err := http.Post(in.Base+"/events", "application/json", strings.NewReader(bad))
		require.NoError(t, err)
		defer resp.Body.Close()
		require.Equal(t, http.StatusAccepted, resp.StatusCode)
		var out map[string]any
		require.NoError(t, json.NewDecoder(resp.Body).Decode(&out))
		return out
	}
	got := post()
	require.Equal(t, true, got["quarantined"], "%v", got)
	require.Equal(t, "rq-1", got["id"])

	out, err := kiln(t.Context(), in, "rejections", "list", "--type", "order.created")
	require.NoError(t, err, out)
	require.Contains(t, out, "quarantined\torder.created\trq-1\tmetadata.amount")
	out, err = kiln(t.Context(), in, "rejections", "recover", "--type", "order.created")
	require.NoError(t, err, out)
	require.Contains(t, out, "still failing")
	require.Contains(t, out, "0 recovered")

	looser := filepath.Join(t.TempDir(), "order.created.json")
	require.NoError(t, os.WriteFile(looser, []byte(`{"allOf":[{"$ref":"envelope.json"}],
		"properties":{"metadata":{"type":"object","properties":{"amount":{"type":"number"}}}}}`), 0o600))
	out, err = kiln(t.Context(), in, "schemas", "push", looser, "--type", "order.created", "--force", "--reason", "refunds", "--url", in.Base)
	require.NoError(t, err, out)

	out, err = kiln(t.Context(), in, "rejections", "recover", "--since", "1h")
	require.NoError(t, err, out)
	require.Contains(t, out, "1 recovered, 0 would recover, 0 already stored", out)
	out, err = kiln(t.Context(), in, "rejections", "recover")
	require.NoError(t, err, out)
	require.Contains(t, out, "0 recovered, 0 would recover, 1 already stored", "a second recover is a no-op")

	got = post() // the client's retry
	require.Equal(t, true, got["duplicate"], "%v", got)
	require.NotContains(t, got, "quarantined")

	// Projected once into the read models.
	require.Eventually(t, func() bool {
		resp, err := http.Get(in.Base + "/events?type=order.created")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		var events []map[string]any
		return json.Unmarshal(b, &events) == nil && len(events) == 1 && events[0]["id"] == "rq-1"
	}, 2*time.Minute, 50*time.Millisecond)
	out, err = kiln(t.Context(), in, "rejections", "list", "--since", "tomorrow")
	require.ErrorContains(t, err, "--since", out)
}

// Issue 24: a body that is not JSON is answered 400 as always and kept
// in REJECTIONS (GET /rejections and `kiln rejections list` show it, its
// body as sent, recoverable:false); `kiln rejections recover` skips it
// with a line saying why.
func TestMalformedBodyListedAndSkippedByRecover(t *testing.T) {
	t.Parallel()
	in := standalonetest.Start(t, t.TempDir(), "KILN_ADMIN_KEYS", "adm-1")
	const garbage = `{"eventType":"page_view",,}`
	resp, err := http.Post(in.Base+"/events", "application/json", strings.NewReader(garbage))
	require.NoError(t, err)
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Equal(t, http.StatusBadRequest, resp.StatusCode, "%s", b)
	require.Contains(t, string(b), `"title":"Malformed JSON"`)

	var items []map[string]any
	require.Eventually(t, func() bool {
		req, _ := http.NewRequest(http.MethodGet, in.Base+"/rejections", nil)
		req.Header.Set("Authorization", "Bearer adm-1")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode == http.StatusOK && json.Unmarshal(b, &items) == nil && len(items) == 1
	}, 2*time.Minute, 50*time.Millisecond)
	require.Equal(t, garbage, items[0]["body"], "not JSON: the body as a string")
	require.Equal(t, false, items[0]["recoverable"])
	require.Equal(t, "rejected", items[0]["outcome"])
	require.NotContains(t, items[0], "eventType")

	out, err := kiln(t.Context(), in, "rejections", "list")
	require.NoError(t, err, out)
	require.Contains(t, out, "rejected\t-\t-\t-: malformed JSON")
	out, err = kiln(t.Context(), in, "rejections", "recover")
	require.NoError(t, err, out)
	require.Contains(t, out, "not recoverable\t")
	require.Contains(t, out, "not well-formed JSON")
	require.Contains(t, out, "0 recovered, 0 would recover, 0 already stored, 0 still failing, 0 unavailable, 1 not recoverable")
}
