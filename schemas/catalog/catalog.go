// Package catalog keeps every version of each event type's JSON Schema in
// JetStream, in the KILN_SCHEMAS stream beside EVENTS: replicated like it,
// restored with it, part of any backup of the account's streams.
//
// A type's versions are the messages on its subject
// kiln.schemas.version.<type>, in order: version n is the n-th. A version is
// never changed or deleted (the stream denies both); a new one is appended
// only if no other was appended since the pusher read the latest (JetStream's
// expected-last-subject-sequence check), so two concurrent pushes cannot
// both become version n.
package catalog

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/cenkalti/backoff/v5"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/kilnhq/kiln/schemas"
)

const (
	// StreamName is the stream holding the schema versions.
	StreamName = "KILN_SCHEMAS"
	// versionPrefix prefixes a type's version subject.
	versionPrefix = "kiln.schemas.version."
	// settingsPrefix prefixes a type's settings subject (latest wins).
	settingsPrefix = "kiln.schemas.settings."
	// MaxDocumentBytes bounds one schema document.
	MaxDocumentBytes = 256 << 10
	// versionHeader carries the version number on each message.
	versionHeader = "Kiln-Schema-Version"
)

// typePattern is the envelope's eventType pattern: the type is a subject
// token sequence.
var typePattern = regexp.MustCompile(`^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$`)

// Version is one immutable version of a type's schema.
type Version struct {
	Type    string          `json:"type"`
	Version int             `json:"version"`
	Schema  json.RawMessage `json:"schema"`
	Created time.Time       `json:"created,omitzero"`
	// Reason is why the version was pushed; required when Forced.
	Reason string `json:"reason,omitempty"`
	// Forced is true when the version was registered despite failing its
	// checks.
	Forced bool `json:"forced,omitempty"`
	// Seq is the message's sequence in KILN_SCHEMAS.
	Seq uint64 `json:"-"`
}

// Errors a push answers with.
var (
	// ErrInvalidType is an event type that is not dot-separated tokens.
	ErrInvalidType = errors.New("event type must be dot-separated tokens of [A-Za-z0-9_-], at most 128 characters")
	// ErrInvalidSchema is a document that is not a compilable JSON Schema.
	ErrInvalidSchema = errors.New("invalid schema")
	// ErrConflict is a push that lost the race with another push of the
	// same type: read the new latest version and decide again.
	ErrConflict = errors.New("another version of this type was registered meanwhile")
)

// Catalog reads and appends schema versions.
type Catalog struct {
	js     jetstream.JetStream
	stream jetstream.Stream
	now    func() time.Time
}

// StreamConfig is the one definition of KILN_SCHEMAS: as many replicas as
// EVENTS, every version kept, none deletable.
func StreamConfig(o schemas.StreamOptions) jetstream.StreamConfig {
	replicas := max(o.Replicas, 1)
	return jetstream.StreamConfig{
		Name:        StreamName,
		Description: "Kiln event schemas: every version of each type's JSON Schema",
		Subjects:    []string{versionPrefix + ">", settingsPrefix + ">"},
		Storage:     jetstream.FileStorage,
		Retention:   jetstream.LimitsPolicy,
		Replicas:    replicas,
		MaxMsgs:     -1,
		MaxBytes:    -1,
		MaxMsgSize:  MaxDocumentBytes + 64<<10,
		DenyDelete:  true,
		DenyPurge:   true,
		AllowDirect: true,
	}
}

// Open creates KILN_SCHEMAS when it does not exist (or brings its
// configuration up to date) and returns its catalog.
func Open(ctx context.Context, js jetstream.JetStream, o schemas.StreamOptions) (*Catalog, error) {
	s, err := js.CreateOrUpdateStream(ctx, StreamConfig(o))
	if err != nil {
		return nil, fmt.Errorf("ensure stream %s: %w", StreamName, err)
	}
	if err := awaitReplicas(ctx, s); err != nil {
		return nil, err
	}
	return &Catalog{js: js, stream: s, now: time.Now}, nil
}

// awaitReplicas waits until the stream answers reads. A stream just created
// on a cluster answers direct gets only once a replica has caught up; until
// then a read finds no responders. Bounded by ctx and by readyTimeout.
func awaitReplicas(ctx context.Context, s jetstream.Stream) error {
	_, err := backoff.Retry(ctx, func() (struct{}, error) {
		_, err := s.GetLastMsgForSubject(ctx, versionPrefix+"kiln-probe")
		switch {
		case err == nil, errors.Is(err, jetstream.ErrMsgNotFound):
			return struct{}{}, nil
		case errors.Is(err, nats.ErrNoResponders), errors.Is(err, jetstream.ErrNoStreamResponse), errors.Is(err, nats.ErrTimeout):
			return struct{}{}, err
		default:
			return struct{}{}, backoff.Permanent(err)
		}
	}, backoff.WithBackOff(&backoff.ExponentialBackOff{
		InitialInterval: 20 * time.Millisecond, RandomizationFactor: 0.2, Multiplier: 1.6, MaxInterval: time.Second,
	}), backoff.WithMaxElapsedTime(readyTimeout))
	if err != nil {
		return fmt.Errorf("stream %s does not answer reads: %w", StreamName, err)
	}
	return nil
}

// readyTimeout bounds how long Open waits for a new stream's replicas.
const readyTimeout = 2 * time.Minute

// CheckType reports whether t can name a type.
func CheckType(t string) error {
	if len(t) > 128 || !typePattern.MatchString(t) {
		return fmt.Errorf("%w: %q", ErrInvalidType, t)
	}
	return nil
}

// Latest is a type's newest version; ok is false when it has none.
func (c *Catalog) Latest(ctx context.Context, eventType string) (v Version, ok bool, err error) {
	if err := CheckType(eventType); err != nil {
		return v, false, err
	}
	m, err := c.stream.GetLastMsgForSubject(ctx, versionPrefix+eventType)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return v, false, nil
	}
	if err != nil {
		return v, false, fmt.Errorf("schema %s: %w", eventType, err)
	}
	v, err = decode(m.Data, m.Sequence)
	return v, err == nil, err
}

// Types lists the types with at least one version, sorted, with their
// number of versions.
func (c *Catalog) Types(ctx context.Context) (map[string]int, error) {
	info, err := c.stream.Info(ctx, jetstream.WithSubjectFilter(versionPrefix+">"))
	if err != nil {
		return nil, fmt.Errorf("stream %s: %w", StreamName, err)
	}
	out := make(map[string]int, len(info.State.Subjects))
	for subj, n := range info.State.Subjects {
		out[strings.TrimPrefix(subj, versionPrefix)] = int(n)
	}
	return out, nil
}

// Versions are every version of a type, oldest first.
func (c *Catalog) Versions(ctx context.Context, eventType string) ([]Version, error) {
	if err := CheckType(eventType); err != nil {
		return nil, err
	}
	var out []Version
	err := c.each(ctx, versionPrefix+eventType, false, func(_ string, data []byte, seq uint64) error {
		v, err := decode(data, seq)
		out = append(out, v)
		return err
	})
	return out, err
}

// Push appends doc as the next version of eventType after checking it
// compiles (against the envelope and the latest version of every other
// type, so a "$ref" to them resolves; nothing is fetched). A document
// equal to the latest version registers nothing and returns that version
// with unchanged true.
func (c *Catalog) Push(ctx context.Context, eventType string, doc []byte, reason string, forced bool) (v Version, unchanged bool, err error) {
	return c.push(ctx, eventType, doc, reason, forced, -1)
}

// push is Push; with after >= 0 it registers only if the latest version is
// still version after (0: none), else ErrConflict.
func (c *Catalog) push(ctx context.Context, eventType string, doc []byte, reason string, forced bool, after int) (v Version, unchanged bool, err error) {
	if err := CheckType(eventType); err != nil {
		return v, false, err
	}
	compact, err := CheckDocument(ctx, c, eventType, doc)
	if err != nil {
		return v, false, err
	}
	latest, ok, err := c.Latest(ctx, eventType)
	if err != nil {
		return v, false, err
	}
	if after >= 0 && latest.Version != after {
		return v, false, fmt.Errorf("schema %s: checked against version %d, latest is %d: %w", eventType, after, latest.Version, ErrConflict)
	}
	var lastSeq uint64
	next := 1
	if ok {
		if bytes.Equal(latest.Schema, compact) {
			return latest, true, nil
		}
		lastSeq, next = latest.Seq, latest.Version+1
	}
	v = Version{Type: eventType, Version: next, Schema: compact, Created: c.now().UTC(), Reason: reason, Forced: forced}
	// Not json.Marshal: it would HTML-escape the schema's "<", ">" and "&".
	var data bytes.Buffer
	enc := json.NewEncoder(&data)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return v, false, fmt.Errorf("encode schema %s: %w", eventType, err)
	}
	msg := nats.NewMsg(versionPrefix + eventType)
	msg.Data = bytes.TrimSpace(data.Bytes())
	msg.Header.Set(versionHeader, strconv.Itoa(next))
	ack, err := c.js.PublishMsg(ctx, msg, jetstream.WithExpectLastSequencePerSubject(lastSeq))
	if err != nil {
		var apiErr *jetstream.APIError
		if errors.As(err, &apiErr) && apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence {
			return v, false, fmt.Errorf("schema %s version %d: %w", eventType, next, ErrConflict)
		}
		return v, false, fmt.Errorf("register schema %s version %d: %w", eventType, next, err)
	}
	v.Seq = ack.Sequence
	return v, false, nil
}

// Seed registers each of docs (by type; "" the envelope, skipped) as
// version 1 of a type that has no version yet: a new deployment starts
// with the schemas compiled into Kiln, and a later start changes nothing.
func (c *Catalog) Seed(ctx context.Context, docs map[string][]byte) error {
	types := make([]string, 0, len(docs))
	for t := range docs {
		if t != "" {
			types = append(types, t)
		}
	}
	slices.Sort(types)
	for _, t := range types {
		if _, ok, err := c.Latest(ctx, t); err != nil || ok {
			if err != nil {
				return err
			}
			continue
		}
		_, _, err := c.Push(ctx, t, docs[t], "compiled into Kiln", false)
		if err != nil && !errors.Is(err, ErrConflict) { // another instance seeded it
			return fmt.Errorf("seed schema %s: %w", t, err)
		}
	}
	return nil
}

// Watch calls version with every version, oldest first, and settings with
// every settings change, then with each new one as it is registered, until
// ctx ends or a callback returns an error. caughtUp is called once, after
// what existed when Watch started.
func (c *Catalog) Watch(ctx context.Context, version func(Version) error, settings func(Settings) error, caughtUp func()) error {
	return c.each(ctx, "kiln.schemas.>", true, func(subject string, data []byte, seq uint64) error {
		if strings.HasPrefix(subject, settingsPrefix) {
			var st Settings
			if err := json.Unmarshal(data, &st); err != nil {
				return fmt.Errorf("schema settings at %s seq %d: %w", StreamName, seq, err)
			}
			return settings(st)
		}
		v, err := decode(data, seq)
		if err != nil {
			return err
		}
		return version(v)
	}, caughtUp)
}

// each delivers the messages on subject in order through an ordered
// consumer; follow keeps it open for new ones.
func (c *Catalog) each(ctx context.Context, subject string, follow bool, fn func(subject string, data []byte, seq uint64) error, caughtUp ...func()) error {
	info, err := c.stream.Info(ctx)
	if err != nil {
		return fmt.Errorf("stream %s: %w", StreamName, err)
	}
	last := info.State.LastSeq
	signal := func() {
		for _, f := range caughtUp {
			f()
		}
		caughtUp = nil
	}
	cons, err := c.stream.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{FilterSubjects: []string{subject}})
	if err != nil {
		return fmt.Errorf("read %s: %w", subject, err)
	}
	pending := func() (bool, error) {
		ci := cons.CachedInfo()
		if ci == nil {
			i, err := cons.Info(ctx)
			if err != nil {
				return false, err
			}
			ci = i
		}
		return ci.NumPending > 0, nil
	}
	if more, err := pending(); err != nil {
		return fmt.Errorf("read %s: %w", subject, err)
	} else if !more {
		signal()
		if !follow {
			return nil
		}
	}
	it, err := cons.Messages()
	if err != nil {
		return fmt.Errorf("read %s: %w", subject, err)
	}
	defer it.Stop()
	stop := context.AfterFunc(ctx, it.Stop)
	defer stop()
	for {
		m, err := it.Next()
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("read %s: %w", subject, err)
		}
		md, err := m.Metadata()
		if err != nil {
			return fmt.Errorf("read %s: %w", subject, err)
		}
		if err := fn(m.Subject(), m.Data(), md.Sequence.Stream); err != nil {
			return err
		}
		if md.NumPending == 0 || md.Sequence.Stream >= last {
			signal()
			if !follow {
				return nil
			}
		}
	}
}

func decode(data []byte, seq uint64) (Version, error) {
	var v Version
	if err := json.Unmarshal(data, &v); err != nil {
		return v, fmt.Errorf("schema version at %s seq %d: %w", StreamName, seq, err)
	}
	v.Seq = seq
	return v, nil
}
