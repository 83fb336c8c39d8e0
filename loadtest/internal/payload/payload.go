// Package payload builds the request bodies kiln-load posts and the stored
// envelope the JetStream baseline publishes. Everything is built once up
// front so the load loop does no encoding.
package payload

import (
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/kilnhq/kiln/schemas"
)

// EventType is the type of every generated event.
const EventType = "page_view"

// BaselineSubject is where the JetStream baseline publishes: inside the
// EVENTS stream (events.>) but apart from the events ingest stores.
const BaselineSubject = schemas.SubjectPrefix + "bench_baseline"

// sampleID has the length of the ULIDs ingest assigns, so the baseline
// envelope is as long as a stored one.
const sampleID = "01JBENCHBASE1INEXAMP1E0000"

// users is how many distinct userIds the bodies cycle through.
const users = 16

// timestamp is the client event time of every generated event (ms).
const timestamp int64 = 1_700_000_000_000

// event is the body a client posts.
type event struct {
	EventType string   `json:"eventType"`
	UserID    string   `json:"userId"`
	Timestamp int64    `json:"timestamp"`
	Metadata  metadata `json:"metadata"`
}

// metadata matches the page_view schema. Its fields are in key order, the
// order ingest's re-encoding of the decoded map gives them.
type metadata struct {
	DurationMs int    `json:"durationMs"`
	Path       string `json:"path"`
	Referrer   string `json:"referrer"`
}

func newEvent(i int) event {
	return event{
		EventType: EventType,
		UserID:    "bench-user-" + strconv.Itoa(i%users),
		Timestamp: timestamp + int64(i),
		Metadata: metadata{
			DurationMs: 1000 + i%users,
			Path:       "/products/" + strconv.Itoa(i%users),
			Referrer:   "https://www.example.com/search?q=kiln",
		},
	}
}

// Singles returns n single-event bodies; body i belongs to user i mod 16.
func Singles(n int) [][]byte {
	out := make([][]byte, n)
	for i := range out {
		out[i] = mustMarshal(newEvent(i))
	}
	return out
}

// Batches returns n JSON-array bodies of size events each; batch i starts
// at a different user so the batches are not all alike.
func Batches(n, size int) [][]byte {
	out := make([][]byte, n)
	for i := range out {
		events := make([]event, size)
		for j := range events {
			events[j] = newEvent(i + j)
		}
		out[i] = mustMarshal(events)
	}
	return out
}

// Envelope returns the stored form of the first single body, byte for byte
// what ingest would publish for it apart from the id and receivedAt values:
// a schemas.Event with an id of a ULID's length and receivedAt set.
func Envelope() []byte {
	e := newEvent(0)
	return mustMarshal(schemas.Event{
		ID:         sampleID,
		EventType:  e.EventType,
		UserID:     e.UserID,
		Timestamp:  e.Timestamp,
		Metadata:   mustMarshal(e.Metadata),
		ReceivedAt: timestamp + 1234,
	})
}

// BaselineUserID is the userId of the Envelope event.
func BaselineUserID() string { return newEvent(0).UserID }

func mustMarshal(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil { // only fixed, known-good types are marshalled here
		panic(fmt.Sprintf("payload: %v", err))
	}
	return b
}
