// Package projbench measures Kiln's projection code against the stores it
// writes to: readmodel's History.Apply and Counters.Apply, batch by batch,
// each batch interleaved with the plainest write the store offers for the
// same events (an unordered InsertMany of the same documents, pipelined
// HINCRBYs), so both see the same noise on a shared machine. It also runs
// the replay engine over the stream and fills the stream for it. Everything
// the throughput measurements write lives under scratch names and is
// deleted before and after.
package projbench

import (
	"encoding/json"
	"strconv"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/kilnhq/kiln/readmodel"
	"github.com/kilnhq/kiln/schemas"
)

// arrivalRate is the rate synthesized events are stamped at (events/s):
// they look like the last n/arrivalRate seconds of live traffic.
const arrivalRate = 5000

// Types are the event types synthesized events cycle through.
func Types() []string {
	return []string{"page_view", "order.created", "order.canceled", "payment.failed"}
}

// Synthesize returns n stored events as the projector receives them: ids
// unique across calls, stream sequences firstSeq, firstSeq+1, …, the four
// Types, 16 users, page_view-like metadata, and timestamps spread over the
// seconds before now at 5,000 events/s.
func Synthesize(n int, firstSeq uint64, now time.Time) []schemas.Event {
	nonce := "bench-" + strconv.FormatInt(now.UnixNano(), 36) + "-"
	end := now.UnixMilli()
	types := Types()
	out := make([]schemas.Event, n)
	for i := range out {
		seq := firstSeq + uint64(i)
		ts := end - int64(n-i)*1000/arrivalRate
		md, _ := json.Marshal(map[string]any{ // a map of strings and ints always encodes
			"path": "/products/" + strconv.Itoa(i%64), "referrer": "https://www.example.com/search?q=kiln",
			"durationMs": 1000 + i%97,
		})
		out[i] = schemas.Event{
			ID:         nonce + strconv.FormatUint(seq, 10),
			EventType:  types[i%len(types)],
			UserID:     "bench-user-" + strconv.Itoa(i%16),
			Timestamp:  ts,
			Metadata:   md,
			ReceivedAt: ts + 3,
			Seq:        seq,
		}
	}
	return out
}

// Docs returns the history documents of events, field for field what
// readmodel stores (its document type is unexported): the baseline inserts
// these. Metadata that is not a JSON object is kept as a JSON string, as
// readmodel does.
func Docs(events []schemas.Event) []any {
	docs := make([]any, len(events))
	for i, ev := range events {
		d := bson.D{
			{Key: "_id", Value: ev.ID}, {Key: "seq", Value: int64(ev.Seq)}, {Key: "eventType", Value: ev.EventType},
			{Key: "userId", Value: ev.UserID}, {Key: "timestamp", Value: ev.Timestamp},
			{Key: "minute", Value: readmodel.MinuteOf(ev.Timestamp)}, {Key: "receivedAt", Value: ev.ReceivedAt},
		}
		if len(ev.Metadata) > 0 {
			var md bson.D
			if err := bson.UnmarshalExtJSON(ev.Metadata, false, &md); err == nil {
				d = append(d, bson.E{Key: "metadata", Value: md})
			} else {
				d = append(d, bson.E{Key: "metadataJSON", Value: string(ev.Metadata)})
			}
		}
		docs[i] = d
	}
	return docs
}

// split cuts s into consecutive slices of at most size elements.
func split[T any](s []T, size int) [][]T {
	var out [][]T
	for len(s) > 0 {
		n := min(size, len(s))
		out = append(out, s[:n:n])
		s = s[n:]
	}
	return out
}
