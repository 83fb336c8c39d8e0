package schemas

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"
)

var storedSeeds = []string{
	`{"id":"e1","eventType":"page_view","userId":"u1","timestamp":1765000000000,"metadata":{"path":"/p","n":[1,{"a":null}]},"receivedAt":1765000000001}`,
	`{"id":"e1","eventType":"page_view","userId":"u1","timestamp":-5,"receivedAt":0,"schemaVersion":3,"seq":9}`,
	`{"id":"e1","eventType":"t","userId":"","timestamp":1,"metadata":{ "a" : 1 },"receivedAt":2}  `,
	`{"id":"e1","eventType":"t","userId":"u","timestamp":1,"metadata":null,"receivedAt":2}`,
	`{"id":"é","eventType":"t","userId":"u","timestamp":1,"receivedAt":2}`,
	"{\"id\":\"\xff\",\"eventType\":\"t\",\"userId\":\"u\",\"timestamp\":1,\"receivedAt\":2}",
	`{"id":"a\"b","eventType":"t","userId":"u","timestamp":1,"receivedAt":2}`,
	`{"id":"e","eventType":"t","userId":"u","timestamp":01,"receivedAt":2}`,
	`{"id":"e","eventType":"t","userId":"u","timestamp":1.5,"receivedAt":2}`,
	`{"id":"e","eventType":"t","userId":"u","timestamp":1e3,"receivedAt":2}`,
	`{"id":"e","eventType":"t","userId":"u","timestamp":99999999999999999999,"receivedAt":2}`,
	`{"id":"e","eventType":"t","userId":"u","timestamp":1,"receivedAt":2,"schemaVersion":99999999999999999999}`,
	`{"id":"e","eventType":"t","userId":"u","timestamp":1,"receivedAt":2,"seq":-1}`,
	`{"id":"e","eventType":"t","userId":"u","timestamp":1,"receivedAt":2,"seq":007}`,
	`{"id":"e","eventType":"t","userId":"u","timestamp":1,"receivedAt":2}x`,
	`{"eventType":"t","id":"e","userId":"u","timestamp":1,"receivedAt":2}`,
	`{"id":"e","eventType":"t","userId":"u","timestamp":1,"receivedAt":2,"extra":true}`,
	`{"id":"e","eventType":"t","userId":"u","timestamp":1,"metadata":{"a":},"receivedAt":2}`,
	`{"id":"e","eventType":"t","userId":"u","timestamp":-,"receivedAt":2}`,
	`{"id":"e","eventType":"t","userId":"u","timestamp":+1,"receivedAt":2}`,
	`{"id":"e","eventType":"t","userId":"u","timestamp":-0,"receivedAt":2}`,
	`[]`, `null`, ``, `{`,
}

// TestDecodeEventMatchesUnmarshal: the direct read of a stored event gives
// what json.Unmarshal gives, and takes ingest's layout.
func TestDecodeEventMatchesUnmarshal(t *testing.T) {
	for _, b := range storedSeeds {
		t.Run(b, func(t *testing.T) { requireSameDecode(t, []byte(b)) })
	}
	_, ok := decodeStored([]byte(storedSeeds[0]))
	require.True(t, ok, "ingest's layout is read directly")
}

func FuzzDecodeEventMatchesUnmarshal(f *testing.F) {
	for _, b := range storedSeeds {
		f.Add([]byte(b))
	}
	f.Fuzz(func(t *testing.T, b []byte) { requireSameDecode(t, b) })
}

func requireSameDecode(t *testing.T, b []byte) {
	t.Helper()
	var want Event
	wantErr := json.Unmarshal(b, &want)
	got, err := DecodeEvent(b)
	if wantErr != nil {
		require.Error(t, err)
		return
	}
	require.NoError(t, err)
	require.Equal(t, want, got)
}

func BenchmarkDecodeEvent(b *testing.B) {
	body := []byte(storedSeeds[0])
	b.Run("direct", func(b *testing.B) {
		for b.Loop() {
			if _, err := DecodeEvent(body); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("unmarshal", func(b *testing.B) {
		for b.Loop() {
			var ev Event
			if err := json.Unmarshal(body, &ev); err != nil {
				b.Fatal(err)
			}
		}
	})
}
