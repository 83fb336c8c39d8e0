package rejections

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/kilnhq/kiln/schemas"
)

// Outcome is what ingest did with the event.
type Outcome string

const (
	// Rejected: answered 400 (enforcement reject, or an envelope or
	// unknown-type refusal).
	Rejected Outcome = "rejected"
	// Quarantined: answered 202 with "quarantined":true, kept here only.
	Quarantined Outcome = "quarantined"
)

// MaxReasons bounds the reasons kept in one record.
const MaxReasons = 100

// Record is one refused or quarantined event.
type Record struct {
	// Seq is the record's sequence in the REJECTIONS stream (on read).
	Seq uint64 `json:"seq,omitempty"`
	// EventType is the event's eventType as sent, "" when absent or not
	// a string.
	EventType string `json:"eventType,omitempty"`
	// ID is the event's id: the client's (ClientID), or the one ingest
	// assigned to a quarantined event without one (and answered). Recover
	// appends under it.
	ID       string  `json:"id,omitempty"`
	ClientID bool    `json:"clientId,omitempty"`
	Outcome  Outcome `json:"outcome"`
	// Reasons are the field errors ingest answered (or would have).
	Reasons []schemas.FieldError `json:"reasons"`
	// SchemaVersion is the version of the type's schema that refused it
	// (0: none, or the envelope).
	SchemaVersion int `json:"schemaVersion,omitempty"`
	// KeyID names the credential that sent it (KeyID), never the key.
	KeyID string    `json:"keyId,omitempty"`
	Time  time.Time `json:"time"`
	// Recoverable is false for a record `kiln rejections recover` cannot
	// append as an event: a body that is not well-formed JSON (Malformed),
	// or one Truncated. Absent: recoverable.
	Recoverable *bool `json:"recoverable,omitempty"`
	// Truncated: Body is only the start of what was sent (BodyBytes
	// bytes), cut so that the record fits the stream's message size.
	Truncated bool `json:"truncated,omitempty"`
	BodyBytes int  `json:"bodyBytes,omitempty"`
	// Body is the event's JSON text exactly as sent (the message data),
	// or, for a Malformed record, the request body (or NDJSON line) as
	// sent.
	Body []byte `json:"-"`
}

// Malformed is the record of a body (or NDJSON line) that is not
// well-formed JSON: no event could be read from it, so its type and id
// are unknown and it cannot be recovered. reason is what ingest answered.
func Malformed(body []byte, reason string) *Record {
	r := &Record{Outcome: Rejected, Reasons: []schemas.FieldError{{Field: "", Message: reason}}, Body: body}
	r.SetUnrecoverable()
	return r
}

// SetUnrecoverable marks r as one recover skips.
func (r *Record) SetUnrecoverable() {
	no := false
	r.Recoverable = &no
}

// CanRecover reports whether recover may append r's body as an event.
func (r *Record) CanRecover() bool { return r.Recoverable == nil || *r.Recoverable }

// KeyID is the name a record gives a credential: a short SHA-256
// fingerprint, "" for none. It tells keys apart without revealing them.
func KeyID(key string) string {
	if key == "" {
		return ""
	}
	sum := sha256.Sum256([]byte(key))
	return "sha256:" + hex.EncodeToString(sum[:6])
}

// WebhookKeyID is the name a record gives an inbound webhook's credential:
// its provider's signing secrets, "webhook:<provider>".
func WebhookKeyID(provider string) string { return "webhook:" + provider }

// Msg is the stream message of r: data the body, the record in Header.
func (r *Record) Msg() (*nats.Msg, error) { return r.MsgWithin(0) }

// headerFraming is what the NATS header block adds to the header line
// ("NATS/1.0\r\n", ": ", "\r\n" twice), with room to spare.
const headerFraming = 64

// ErrRecordTooLarge is why a record cannot be written within a size: its
// header alone (the reasons) does not fit, or it is quarantined (its body
// must be kept whole to be recovered).
var ErrRecordTooLarge = errors.New("rejection record larger than the stream's message size")

// MsgWithin is Msg for a message of at most maxSize bytes (header and
// data, as NATS counts them against max_payload; 0 is no bound). A
// refused event's record whose body does not fit keeps the start of the
// body, Truncated, with BodyBytes the size sent, and is not recoverable.
// A quarantined event's record is never cut: ErrRecordTooLarge.
func (r *Record) MsgWithin(maxSize int) (*nats.Msg, error) {
	rec := *r
	rec.Seq = 0
	if len(rec.Reasons) > MaxReasons {
		rec.Reasons = rec.Reasons[:MaxReasons]
	}
	h, err := json.Marshal(&rec) // escapes control characters: a valid header value
	if err != nil {
		return nil, fmt.Errorf("encode rejection: %w", err)
	}
	body := r.Body
	if maxSize > 0 && len(h)+len(Header)+headerFraming+len(body) > maxSize {
		if rec.Outcome == Quarantined {
			return nil, fmt.Errorf("%w: %d bytes of body", ErrRecordTooLarge, len(body))
		}
		rec.Truncated, rec.BodyBytes = true, len(body)
		rec.SetUnrecoverable()
		if h, err = json.Marshal(&rec); err != nil {
			return nil, fmt.Errorf("encode rejection: %w", err)
		}
		room := maxSize - len(h) - len(Header) - headerFraming
		if room < 0 {
			return nil, fmt.Errorf("%w: %d bytes of header", ErrRecordTooLarge, len(h))
		}
		body = body[:room:room]
	}
	return &nats.Msg{Subject: Subject(r.EventType), Data: body, Header: nats.Header{Header: {string(h)}}}, nil
}

// Decode reads the record of a message of the stream.
func Decode(seq uint64, header nats.Header, data []byte) (Record, error) {
	var r Record
	if err := json.Unmarshal([]byte(header.Get(Header)), &r); err != nil {
		return r, fmt.Errorf("rejection %d: %w", seq, err)
	}
	r.Seq, r.Body = seq, data
	return r, nil
}

// HasField reports whether one of r's reasons is about field (or a field
// inside it: "metadata" matches "metadata.amount").
func (r *Record) HasField(field string) bool {
	for _, e := range r.Reasons {
		if e.Field == field || len(e.Field) > len(field) && e.Field[:len(field)] == field && e.Field[len(field)] == '.' {
			return true
		}
	}
	return false
}
