package schemas

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// StreamOptions are the deployment-specific settings of the EVENTS stream.
// The env tags name the variables services read them from. The zero value is
// valid and means: one replica, a two-minute dedupe window, keep events forever.
type StreamOptions struct {
	// Replicas is the number of stream replicas: 1 standalone, 3 in a cluster.
	Replicas int `env:"STREAM_REPLICAS" envDefault:"1"`
	// DuplicateWindow is how long JetStream remembers Nats-Msg-Id values.
	DuplicateWindow time.Duration `env:"STREAM_DUPLICATE_WINDOW" envDefault:"2m"`
	// MaxAge drops events older than this; 0 keeps them forever.
	MaxAge time.Duration `env:"STREAM_MAX_AGE" envDefault:"0s"`
	// MaxBytes caps the stream size; 0 is unlimited.
	MaxBytes int64 `env:"STREAM_MAX_BYTES" envDefault:"0"`
}

// DefaultDuplicateWindow is the dedupe window when none is configured.
const DefaultDuplicateWindow = 2 * time.Minute

func (o StreamOptions) withDefaults() StreamOptions {
	if o.Replicas == 0 {
		o.Replicas = 1
	}
	if o.DuplicateWindow == 0 {
		o.DuplicateWindow = DefaultDuplicateWindow
	}
	return o
}

// Validate reports settings JetStream would refuse.
func (o StreamOptions) Validate() error {
	o = o.withDefaults()
	switch {
	case o.Replicas < 1 || o.Replicas > 5:
		return fmt.Errorf("stream replicas must be between 1 and 5, got %d", o.Replicas)
	case o.DuplicateWindow < 0:
		return fmt.Errorf("stream duplicate window must not be negative, got %s", o.DuplicateWindow)
	case o.MaxAge < 0:
		return fmt.Errorf("stream max age must not be negative, got %s", o.MaxAge)
	case o.MaxAge > 0 && o.DuplicateWindow > o.MaxAge:
		return fmt.Errorf("stream duplicate window %s exceeds max age %s", o.DuplicateWindow, o.MaxAge)
	case o.MaxBytes < 0:
		return fmt.Errorf("stream max bytes must not be negative, got %d", o.MaxBytes)
	}
	return nil
}

// StreamConfig is the one definition of the EVENTS stream.
func StreamConfig(o StreamOptions) jetstream.StreamConfig {
	o = o.withDefaults()
	maxBytes := o.MaxBytes
	if maxBytes == 0 {
		maxBytes = -1
	}
	return jetstream.StreamConfig{
		Name:        StreamName,
		Description: "Kiln events: the source of truth every read model is built from",
		Subjects:    []string{SubjectAll},
		Storage:     jetstream.FileStorage,
		Retention:   jetstream.LimitsPolicy,
		Discard:     jetstream.DiscardOld,
		Replicas:    o.Replicas,
		Duplicates:  o.DuplicateWindow,
		MaxAge:      o.MaxAge,
		MaxBytes:    maxBytes,
		MaxMsgs:     -1,
		DenyPurge:   false,
		AllowDirect: true,
	}
}

// EnsureStream creates the EVENTS stream or updates it to the given
// options, retrying for up to SetupTimeout while JetStream cannot answer
// yet (see Setup), silently; roles use SetUpStream, which logs retries.
func EnsureStream(ctx context.Context, js jetstream.JetStream, o StreamOptions) (jetstream.Stream, error) {
	return SetUpStream(ctx, js, o, nil)
}

// SetUpStream is EnsureStream logging each retry to log (nil: not logged).
func SetUpStream(ctx context.Context, js jetstream.JetStream, o StreamOptions, log *slog.Logger) (jetstream.Stream, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	return Setup(ctx, log, StreamName, func(ctx context.Context) (jetstream.Stream, error) {
		return js.CreateOrUpdateStream(ctx, StreamConfig(o))
	})
}

// WaitForStream returns the EVENTS stream, waiting while it does not exist
// yet: ingest creates it, and its consumers may start first. A lookup that
// fails for a reason that may pass (a timeout while the cluster is busy,
// say) is retried too, for up to SetupTimeout in a row.
func WaitForStream(ctx context.Context, js jetstream.JetStream, log *slog.Logger) (jetstream.Stream, error) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	var failingSince time.Time
	for {
		stream, err := js.Stream(ctx, StreamName)
		switch {
		case err == nil:
			return stream, nil
		case errors.Is(err, jetstream.ErrStreamNotFound):
			failingSince = time.Time{}
			log.Info("waiting for the stream to be created by ingest", "stream", StreamName)
		case ctx.Err() == nil && transient(err):
			if failingSince.IsZero() {
				failingSince = time.Now()
			}
			if time.Since(failingSince) > SetupTimeout {
				return nil, fmt.Errorf("stream %s: gave up after %s: %w", StreamName, SetupTimeout, err)
			}
			log.Warn("looking up the stream failed; retrying", "stream", StreamName, "err", err)
		default:
			return nil, fmt.Errorf("stream %s: %w", StreamName, err)
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("stream %s: %w", StreamName, ctx.Err())
		case <-t.C:
		}
	}
}

// DecodeMsg reads a stored event and its stream sequence from a message of
// the EVENTS stream; an error means the message is not a Kiln event.
func DecodeMsg(m jetstream.Msg) (Event, *jetstream.MsgMetadata, error) {
	meta, err := m.Metadata()
	if err != nil {
		return Event{}, nil, fmt.Errorf("not a JetStream message: %w", err)
	}
	ev, err := DecodeEvent(m.Data())
	if err != nil {
		return ev, meta, fmt.Errorf("undecodable event: %w", err)
	}
	if ev.ID == "" || ev.EventType == "" {
		return ev, meta, errors.New("event without id or eventType")
	}
	ev.Seq = meta.Sequence.Stream
	return ev, meta, nil
}
