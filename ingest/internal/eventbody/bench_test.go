package eventbody_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/kilnhq/kiln/ingest/internal/eventbody"
	"github.com/kilnhq/kiln/schemas"
)

// benchEvent is shaped like the events kiln-load posts (page_view with
// path, referrer and durationMs metadata).
func benchEvent(i int, eventType string) string {
	return fmt.Sprintf(`{"eventType":%q,"userId":"bench-user-%d","timestamp":%d,"metadata":{"durationMs":%d,"path":"/products/%d","referrer":"https://www.example.com/search?q=kiln"}}`,
		eventType, i%16, 1_700_000_000_000+i, 1000+i%16, i%16)
}

func benchBatch(n int, eventType string) []byte {
	events := make([]string, n)
	for i := range events {
		events[i] = benchEvent(i, eventType)
	}
	return []byte("[" + strings.Join(events, ",") + "]")
}

func BenchmarkSplitBatch100(b *testing.B) {
	body := benchBatch(100, "page_view")
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := eventbody.Split(eventbody.FormatJSON, body, 1000); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSplitSingle(b *testing.B) {
	body := []byte(benchEvent(1, "page_view"))
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := eventbody.Split(eventbody.FormatJSON, body, 1000); err != nil {
			b.Fatal(err)
		}
	}
}

func benchNormalize(b *testing.B, eventType string) {
	reg, err := schemas.NewRegistry()
	if err != nil {
		b.Fatal(err)
	}
	n := &eventbody.Normalizer{Registry: reg, Now: time.Now}
	items, _, err := eventbody.Split(eventbody.FormatJSON, []byte(benchEvent(3, eventType)), 1)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	var buf, out []byte
	for b.Loop() {
		ev, _, errs, _, grown := n.Normalize(&items[0], "", buf[:0])
		if errs != nil {
			b.Fatal(errs)
		}
		buf = grown
		out = eventbody.AppendEvent(out[:0], &ev)
	}
}

// BenchmarkNormalize is validation plus building and encoding the stored
// envelope of one page_view event (a type with its own schema).
func BenchmarkNormalize(b *testing.B) { benchNormalize(b, "page_view") }

// BenchmarkNormalizeUnregistered is the same for a type checked against the
// envelope alone.
func BenchmarkNormalizeUnregistered(b *testing.B) { benchNormalize(b, "signup.completed") }
