// Package rejections is the layout of the REJECTIONS stream, Kiln's bounded
// dead-letter stream of the events ingest refused (enforcement reject) or
// quarantined: each message is the event's JSON text exactly as it was
// sent, and one header holds the record (reasons, outcome, key id, time,
// id). Ingest writes it; the gateway (GET /rejections) and `kiln
// rejections` read it. Every reader and writer goes through this package.
package rejections

import (
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/kilnhq/kiln/schemas"
)

const (
	// StreamName is the stream of refused and quarantined events.
	StreamName = "REJECTIONS"
	// subjectTyped prefixes the subject of an event with a valid type:
	// rejections.typed.<eventType>.
	subjectTyped = "rejections.typed."
	// SubjectUntyped is the subject of an event whose eventType is missing
	// or invalid (a prefix of its own: no event type can collide with it).
	SubjectUntyped = "rejections.untyped"
	// subjectAll matches every record.
	subjectAll = "rejections.>"
	// Header holds the record (JSON) of a message; its data is the body.
	Header = "Kiln-Rejection"
)

// Options are the REJECTIONS stream's limits. Replicas follow the EVENTS
// stream's (STREAM_REPLICAS).
type Options struct {
	// MaxAge drops records older than this.
	MaxAge time.Duration `env:"REJECTIONS_MAX_AGE" envDefault:"168h"`
	// MaxBytes caps the stream's size; the oldest records go first.
	MaxBytes int64 `env:"REJECTIONS_MAX_BYTES" envDefault:"1073741824"`
}

// Default limits, for a zero Options.
const (
	DefaultMaxAge   = 7 * 24 * time.Hour
	DefaultMaxBytes = 1 << 30
)

func (o Options) withDefaults() Options {
	if o.MaxAge == 0 {
		o.MaxAge = DefaultMaxAge
	}
	if o.MaxBytes == 0 {
		o.MaxBytes = DefaultMaxBytes
	}
	return o
}

// Validate names an invalid setting by its variable.
func (o Options) Validate() error {
	switch {
	case o.MaxAge < 0 || o.MaxAge > 0 && o.MaxAge < time.Minute:
		return fmt.Errorf("REJECTIONS_MAX_AGE must be at least 1m, got %s", o.MaxAge)
	case o.MaxBytes < 0 || o.MaxBytes > 0 && o.MaxBytes < 1<<20:
		return fmt.Errorf("REJECTIONS_MAX_BYTES must be at least 1048576 (1 MiB), got %d", o.MaxBytes)
	}
	return nil
}

// Subject is the subject of a record of an event of type eventType (""
// or an invalid type: SubjectUntyped).
func Subject(eventType string) string {
	if !schemas.ValidEventType(eventType) {
		return SubjectUntyped
	}
	return subjectTyped + eventType
}

// StreamConfig is the one definition of the REJECTIONS stream: bounded by
// age and size, oldest records dropped first.
func StreamConfig(o Options, replicas int) jetstream.StreamConfig {
	o = o.withDefaults()
	return jetstream.StreamConfig{
		Name:        StreamName,
		Description: "Kiln rejections: events refused or quarantined by ingest, as sent, with the reasons",
		Subjects:    []string{subjectAll},
		Storage:     jetstream.FileStorage,
		Retention:   jetstream.LimitsPolicy,
		Discard:     jetstream.DiscardOld,
		Replicas:    max(replicas, 1),
		MaxAge:      o.MaxAge,
		MaxBytes:    o.MaxBytes,
		MaxMsgs:     -1,
		AllowDirect: true,
	}
}

// Ensure creates the REJECTIONS stream or updates it to the options.
func Ensure(ctx context.Context, js jetstream.JetStream, o Options, replicas int) (jetstream.Stream, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	s, err := js.CreateOrUpdateStream(ctx, StreamConfig(o, replicas))
	if err != nil {
		return nil, fmt.Errorf("ensure stream %s: %w", StreamName, err)
	}
	return s, nil
}
