package rejections

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
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
	// Body is the event's JSON text exactly as sent (the message data).
	Body []byte `json:"-"`
}

// KeyID is the name a record gives a credential: a short SHA-256
// fingerprint, "" for none. It tells keys apart without revealing them.
func KeyID(key string) string {
	if key == "" {
		return ""
	}
	sum := sha256.Sum256([]byte(key))
	return "sha256:" + hex.EncodeToString(sum[:6])
}

// Msg is the stream message of r: data the body, the record in Header.
func (r *Record) Msg() (*nats.Msg, error) {
	rec := *r
	rec.Seq = 0
	if len(rec.Reasons) > MaxReasons {
		rec.Reasons = rec.Reasons[:MaxReasons]
	}
	h, err := json.Marshal(&rec) // escapes control characters: a valid header value
	if err != nil {
		return nil, fmt.Errorf("encode rejection: %w", err)
	}
	return &nats.Msg{Subject: Subject(r.EventType), Data: r.Body, Header: nats.Header{Header: {string(h)}}}, nil
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
