package eventbody

import (
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/oklog/ulid/v2"

	"github.com/kilnhq/kiln/schemas"
	"github.com/kilnhq/kiln/schemas/catalog"
	"github.com/kilnhq/kiln/schemas/jsonscan"
)

// Normalizer validates items and builds the stored envelopes.
type Normalizer struct {
	// Registry validates events when Schemas is nil. It has no version
	// numbers: the events it validates carry no schemaVersion.
	Registry *schemas.Registry
	// Schemas, when set, is the registry in force now (the latest version
	// of every type, which changes while ingest runs). Each event it
	// validates records the version number of its type's schema.
	Schemas func() *catalog.Snapshot
	// Now returns the server time; tests may fix it.
	Now func() time.Time
	// MaxFutureSkew is how far ahead of Now a timestamp may be; 0 is no
	// bound.
	MaxFutureSkew time.Duration
	// Enforcement is what to do with an event its type's schema refuses,
	// for a type with no enforcement of its own ("" is reject).
	Enforcement catalog.Enforcement
	// RejectUnknown refuses events of types with no schema of their own
	// (SCHEMAS_UNKNOWN_TYPES=reject); otherwise the envelope's checks are
	// all they get.
	RejectUnknown bool
}

// unknownTypeMessage explains the refusal of a type with no schema.
const unknownTypeMessage = "has no registered schema, and this deployment refuses such types (SCHEMAS_UNKNOWN_TYPES=reject)"

// Normalize validates one item read by Split and returns its stored
// envelope. fallbackID, when not empty, is the id to use if the event has
// none (from the Idempotency-Key header). clientID reports whether the id
// came from the client. A non-nil field error slice means the event is
// invalid; with quarantine true, it passed the envelope's checks and only
// its type's schema, under enforcement quarantine, refused it: ev then
// holds its EventType, ID (assigned when it had none) and the refusing
// SchemaVersion. Under enforcement none such an event is valid. The
// envelope's Metadata is compact JSON (as json.Marshal writes it) in a
// buffer of its own, appended to buf, which is returned grown.
func (n *Normalizer) Normalize(it *Item, fallbackID string, buf []byte) (ev schemas.Event, clientID bool, errs []schemas.FieldError, quarantine bool, _ []byte) {
	f := &it.Fields
	if !jsonscan.ValidText(it.Raw) {
		return ev, false, invalidText(it.Raw, f), false, buf
	}
	reg, version, enforcement := n.Registry, 0, n.Enforcement
	if n.Schemas != nil {
		// One snapshot: the version recorded is the one that validated.
		snap := n.Schemas()
		reg, version = snap.Registry, snap.Version(f.EventType)
		enforcement = snap.EnforcementOf(f.EventType, n.Enforcement)
	}
	if errs := reg.ValidateFields(f, it.Raw); errs != nil {
		if !reg.HasSchema(f.EventType) || enforcement == "" || enforcement == catalog.Reject ||
			reg.ValidateEnvelope(f, it.Raw) != nil {
			return ev, false, errs, false, buf
		}
		if enforcement == catalog.Quarantine {
			ev.EventType, ev.SchemaVersion = f.EventType, version
			var idErr []schemas.FieldError
			if ev.ID, clientID, idErr = assignID(f.ID, fallbackID); idErr != nil {
				return schemas.Event{}, false, append(errs, idErr...), false, buf
			}
			return ev, clientID, errs, true, buf
		}
		version = 0 // enforcement none: valid without its schema, and says so
	} else if n.RejectUnknown && !reg.HasSchema(f.EventType) {
		return ev, false, []schemas.FieldError{{Field: "eventType", Message: unknownTypeMessage}}, false, buf
	}
	// Valid: the envelope schema guarantees an object with string eventType
	// and userId, a number timestamp, and an object metadata if present.
	ev.EventType, ev.UserID = f.EventType, f.UserID
	ts, err := strconv.ParseFloat(string(f.Timestamp), 64)
	if err != nil {
		return ev, false, []schemas.FieldError{{Field: "timestamp", Message: "is not a finite number"}}, false, buf
	}
	ev.Timestamp = schemas.TimestampMillis(ts)
	now := n.Now()
	if n.MaxFutureSkew > 0 && ev.Timestamp > now.Add(n.MaxFutureSkew).UnixMilli() {
		return ev, false, []schemas.FieldError{{Field: "timestamp", Message: "is more than " + n.MaxFutureSkew.String() +
			" ahead of the server clock (INGEST_MAX_FUTURE_SKEW); send Unix milliseconds, or seconds below 1e10"}}, false, buf
	}
	if f.MetadataKind != jsonscan.None {
		start := len(buf)
		if buf, err = appendMetadata(buf, f.Metadata); err != nil {
			return ev, false, []schemas.FieldError{{Field: "metadata", Message: fmt.Sprintf("cannot be encoded: %v", err)}}, false, buf[:start]
		}
		ev.Metadata = buf[start:len(buf):len(buf)]
	}
	var idErr []schemas.FieldError
	if ev.ID, clientID, idErr = assignID(f.ID, fallbackID); idErr != nil {
		return ev, false, idErr, false, buf
	}
	ev.ReceivedAt = now.UnixMilli()
	ev.SchemaVersion = version
	return ev, clientID, nil, false, buf
}

// assignID is an event's id: the client's (its own id, else the
// Idempotency-Key's fallback), else a new ULID.
func assignID(id, fallbackID string) (_ string, clientID bool, _ []schemas.FieldError) {
	switch {
	case id != "" && fallbackID != "" && id != fallbackID:
		return "", false, []schemas.FieldError{{Field: "id", Message: "differs from the Idempotency-Key header"}}
	case id != "":
		return id, true, nil
	case fallbackID != "":
		return fallbackID, true, nil
	}
	return ulid.Make().String(), false, nil
}

// appendMetadata appends the stored form of a metadata object: its text
// compacted when every JSON reader reads it the same way (the common case),
// otherwise re-encoded from its decoded value, which settles repeated keys
// (the last wins, as the validator saw it) and invalid UTF-8.
func appendMetadata(buf, raw []byte) ([]byte, error) {
	if jsonscan.Unambiguous(raw) { // raw was read by Split: well-formed
		return jsonscan.AppendCompactValid(buf, raw), nil
	}
	v, ok := jsonscan.Decode(raw)
	if !ok {
		return buf, fmt.Errorf("not well-formed")
	}
	b, err := json.Marshal(v)
	if err != nil {
		return buf, err
	}
	return append(buf, b...), nil
}

// invalidTextMessage explains why text that is not valid UTF-8 is refused.
const invalidTextMessage = "is not valid UTF-8 text (invalid bytes or an unpaired surrogate escape): " +
	"Kiln stores text as sent and refuses what it could only alter"

// invalidText names the members of raw whose text is not valid UTF-8, and
// inside metadata the member of it.
func invalidText(raw []byte, f *schemas.EventFields) []schemas.FieldError {
	var errs []schemas.FieldError
	for _, name := range jsonscan.InvalidTextMembers(raw) {
		if name == "metadata" && f.MetadataKind == jsonscan.Object {
			for _, sub := range jsonscan.InvalidTextMembers(f.Metadata) {
				field := "metadata"
				if sub != "" {
					field += "." + sub
				}
				errs = append(errs, schemas.FieldError{Field: field, Message: invalidTextMessage})
			}
			continue
		}
		errs = append(errs, schemas.FieldError{Field: name, Message: invalidTextMessage})
	}
	if errs == nil { // not reachable while ValidText and InvalidTextMembers agree
		errs = []schemas.FieldError{{Field: "", Message: invalidTextMessage}}
	}
	return errs
}
