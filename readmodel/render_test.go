package readmodel

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/kilnhq/kiln/schemas"
)

// renderViaBSON is RenderEvent without its fast path: what the history
// returns for ev.
func renderViaBSON(t testing.TB, ev schemas.Event) ([]byte, error) {
	t.Helper()
	out := ev
	if len(ev.Metadata) > 0 {
		md, err := renderMetadataViaBSON(ev)
		if err != nil {
			return nil, err
		}
		out.Metadata = md
	}
	return json.Marshal(out)
}

var renderSeeds = []string{
	`{"path":"/products/7","durationMs":1042}`,
	` { "a" : [ 1 , -2 , true , false , null , { } , [ ] ] , "b" : { "c" : "d" } } `,
	`{}`, `{"":1}`, `{"a":0,"b":-1,"c":9223372036854775807,"d":-9223372036854775808}`,
	`{"big":9223372036854775808}`, `{"small":-9223372036854775809}`, `{"huge":1e400}`,
	`{"f":1.0}`, `{"f":1.5}`, `{"f":1e2}`, `{"f":-0}`, `{"f":-0.0}`, `{"f":0.1}`, `{"f":123456789012345678901234}`,
	`{"dup":1,"x":2,"dup":3}`, `{"a":{"dup":1,"dup":2}}`,
	`{"$set":1}`, `{"a.b":1}`, `{"a":{"$x":1}}`, `{"a\u0000b":1}`,
	`{"s":"caf\u00e9"}`, `{"s":"café"}`, `{"s":"a\"b"}`, `{"s":"a\\b"}`, `{"s":"a\/b"}`, `{"s":"<tag>&"}`,
	`{"s":"tab\there"}`, `{"s":"\u2028"}`, "{\"s\":\"\xff\"}", `{"s":"\ud800"}`,
	`{"k<":1}`, `{"a":[{"b":[{"c":[1,2,{"d":null}]}]}]}`,
	`[1,2]`, `"str"`, `null`, `{"a":1}x`, `{"a":tru}`, `{"a":01}`, `{"a":1,}`,
}

// TestRenderEventMatchesTheHistory: the cache renders every event as the
// history returns it, fast path or not.
func TestRenderEventMatchesTheHistory(t *testing.T) {
	for _, md := range renderSeeds {
		t.Run(md, func(t *testing.T) { requireSameRender(t, md) })
	}
	// The fast path is taken for plain metadata.
	_, ok := plainMetadata(json.RawMessage(renderSeeds[1]))
	require.True(t, ok)
}

func FuzzRenderEventMatchesTheHistory(f *testing.F) {
	for _, md := range renderSeeds {
		f.Add(md)
	}
	f.Fuzz(func(t *testing.T, md string) {
		if !json.Valid([]byte(md)) {
			return // ingest refuses it
		}
		requireSameRender(t, md)
	})
}

func requireSameRender(t *testing.T, md string) {
	t.Helper()
	ev := schemas.Event{ID: "e1", EventType: "page_view", UserID: "u1", Timestamp: 1765000000000,
		ReceivedAt: 1765000000001, Seq: 7, Metadata: json.RawMessage(md)}
	want, wantErr := renderViaBSON(t, ev)
	got, err := RenderEvent(ev)
	if wantErr != nil {
		require.Error(t, err, "BSON path: %v", wantErr)
		return
	}
	require.NoError(t, err)
	require.Equal(t, string(want), string(got))
}

func BenchmarkRenderEvent(b *testing.B) {
	ev := schemas.Event{ID: "ev-0000001", EventType: "page_view", UserID: "u1", Timestamp: 1765000000000,
		ReceivedAt: 1765000000001, Seq: 12345, Metadata: json.RawMessage(`{"path":"/products/7","durationMs":1042}`)}
	for _, tt := range []struct {
		name   string
		render func() ([]byte, error)
	}{
		{"fast", func() ([]byte, error) { return RenderEvent(ev) }},
		{"bson", func() ([]byte, error) { return renderViaBSON(b, ev) }},
	} {
		b.Run(tt.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := tt.render(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// FuzzRenderEventMatchesMarshal: the direct rendering of an event with
// plain strings and metadata is byte for byte json.Marshal's (RenderEvent
// falls back to it for anything else).
func FuzzRenderEventMatchesMarshal(f *testing.F) {
	f.Add("ev-1", "page_view", "u1", int64(1765000000000), int64(1765000000001), 0, uint64(7), `{"path":"/p","n":[1,{"b":true}]}`)
	f.Add("e<1>", "a&b", "", int64(-1), int64(0), 3, uint64(0), ``)
	f.Add("é", "t\"", "u\\", int64(1), int64(2), -1, uint64(1<<63), `{ "a" : 1 }`)
	f.Add("id", "t", "u\x7f\u2028", int64(1), int64(2), 1, uint64(1), `{"a":null}`)
	f.Fuzz(func(t *testing.T, id, typ, user string, ts, received int64, version int, seq uint64, md string) {
		ev := schemas.Event{ID: id, EventType: typ, UserID: user, Timestamp: ts, ReceivedAt: received,
			SchemaVersion: version, Seq: seq, Metadata: json.RawMessage(md)}
		if len(md) > 0 {
			plain, ok := plainMetadata(ev.Metadata)
			if !ok {
				return // rendered through BSON
			}
			ev.Metadata = plain
		}
		want, err := json.Marshal(ev)
		require.NoError(t, err)
		got, ok := appendPlainEvent(nil, ev)
		if !ok {
			return
		}
		require.Equal(t, string(want), string(got))
		rendered, err := RenderEvent(ev)
		require.NoError(t, err)
		require.Equal(t, string(want), string(rendered))
	})
}
