package payload

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/kilnhq/kiln/schemas"
)

// decode reads a body the way ingest does: numbers kept exact.
func decode(t *testing.T, b []byte) any {
	t.Helper()
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		t.Fatalf("%s: %v", b, err)
	}
	return v
}

// requireValidBatches checks each batch is a JSON array of size events,
// each valid against reg.
func requireValidBatches(t *testing.T, reg *schemas.Registry, batches [][]byte, size int) {
	t.Helper()
	for _, b := range batches {
		items, ok := decode(t, b).([]any)
		if !ok || len(items) != size {
			t.Fatalf("batch is not an array of %d: %.60s", size, b)
		}
		for _, it := range items {
			if errs := reg.Validate(it); errs != nil {
				t.Fatalf("batch item: %v", errs)
			}
		}
	}
}

func TestBodiesAreValidEvents(t *testing.T) {
	t.Parallel()
	reg, err := schemas.NewRegistry()
	if err != nil {
		t.Fatal(err)
	}
	singles := Singles(20)
	users := map[any]bool{}
	for _, b := range singles {
		v := decode(t, b)
		if errs := reg.Validate(v); errs != nil {
			t.Fatalf("%s: %v", b, errs)
		}
		users[v.(map[string]any)["userId"]] = true
	}
	if len(users) != 16 {
		t.Errorf("%d distinct users, want 16", len(users))
	}
	batches := Batches(3, 100)
	requireValidBatches(t, reg, batches, 100)
	if bytes.Equal(batches[0], batches[1]) {
		t.Error("batches are all alike")
	}
}

// TestEnvelopeIsWhatIngestStores rebuilds the stored envelope the way
// ingest's normaliser does (metadata re-encoded from the decoded map) and
// compares it with Envelope, apart from id and receivedAt.
func TestEnvelopeIsWhatIngestStores(t *testing.T) {
	t.Parallel()
	m := decode(t, Singles(1)[0]).(map[string]any)
	md, err := json.Marshal(m["metadata"])
	if err != nil {
		t.Fatal(err)
	}
	ts, _ := m["timestamp"].(json.Number).Int64()
	var got schemas.Event
	if err := json.Unmarshal(Envelope(), &got); err != nil {
		t.Fatal(err)
	}
	want, err := json.Marshal(schemas.Event{
		ID: got.ID, EventType: m["eventType"].(string), UserID: m["userId"].(string),
		Timestamp: ts, Metadata: md, ReceivedAt: got.ReceivedAt,
	})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(Envelope(), want) {
		t.Errorf("envelope\n got %s\nwant %s", Envelope(), want)
	}
	if len(got.ID) != 26 || got.UserID != BaselineUserID() {
		t.Errorf("id %q (want ULID length), user %q", got.ID, got.UserID)
	}
	if BaselineSubject != "events.bench_baseline" {
		t.Errorf("subject %q", BaselineSubject)
	}
}
