package eventbody

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/oklog/ulid/v2"

	"github.com/kilnhq/kiln/schemas"
)

// Normalizer validates decoded items and builds the stored envelopes.
type Normalizer struct {
	Registry *schemas.Registry
	// Now returns the server time; tests may fix it.
	Now func() time.Time
}

// Normalize validates one decoded value and returns its stored envelope.
// fallbackID, when not empty, is the id to use if the event has none (from
// the Idempotency-Key header). clientID reports whether the id came from the
// client. A non-nil field error slice means the event is invalid.
func (n *Normalizer) Normalize(v any, fallbackID string) (ev schemas.Event, clientID bool, errs []schemas.FieldError) {
	if errs := n.Registry.Validate(v); errs != nil {
		return ev, false, errs
	}
	m := v.(map[string]any) // the envelope schema requires an object
	ev.EventType = m["eventType"].(string)
	ev.UserID = m["userId"].(string)
	ts, err := m["timestamp"].(json.Number).Float64()
	if err != nil {
		return ev, false, []schemas.FieldError{{Field: "timestamp", Message: "is not a finite number"}}
	}
	ev.Timestamp = schemas.TimestampMillis(ts)
	if md, ok := m["metadata"]; ok {
		if ev.Metadata, err = json.Marshal(md); err != nil {
			return ev, false, []schemas.FieldError{{Field: "metadata", Message: fmt.Sprintf("cannot be encoded: %v", err)}}
		}
	}
	switch id, _ := m["id"].(string); {
	case id != "" && fallbackID != "" && id != fallbackID:
		return ev, false, []schemas.FieldError{{Field: "id", Message: "differs from the Idempotency-Key header"}}
	case id != "":
		ev.ID, clientID = id, true
	case fallbackID != "":
		ev.ID, clientID = fallbackID, true
	default:
		ev.ID = ulid.Make().String()
	}
	ev.ReceivedAt = n.Now().UnixMilli()
	return ev, clientID, nil
}
