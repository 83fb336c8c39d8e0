package schemas

import (
	"encoding/json"
	"math"
)

// Event is the envelope Kiln stores in the EVENTS stream and serves on read.
//
// Ingest fills ID (when the client sent none), ReceivedAt, SchemaVersion, and
// normalises Timestamp to milliseconds. Seq is the JetStream stream sequence;
// it is set on read only and never part of the stored message body.
type Event struct {
	ID         string          `json:"id"`
	EventType  string          `json:"eventType"`
	UserID     string          `json:"userId"`
	Timestamp  int64           `json:"timestamp"`
	Metadata   json.RawMessage `json:"metadata,omitempty"`
	ReceivedAt int64           `json:"receivedAt"`
	// SchemaVersion is the version of the type's schema (in the schema
	// registry) that validated the event when ingest stored it; 0 (absent
	// in JSON) for a type with no schema of its own. It is part of the
	// stored message body, so every projection and replay carries it.
	SchemaVersion int    `json:"schemaVersion,omitempty"`
	Seq           uint64 `json:"seq,omitempty"`
}

// secondsThreshold separates seconds from milliseconds: a timestamp below it
// is seconds (compat with the Node system, whose clients sent either).
const secondsThreshold = 1e10

// TimestampMillis converts a client timestamp to Unix milliseconds. Values
// below 1e10 are seconds; fractions are rounded to the nearest millisecond.
func TimestampMillis(v float64) int64 {
	if v < secondsThreshold {
		v *= 1000
	}
	return int64(math.Round(v))
}
