// Package status publishes each projector process's view of its
// projections' stores in a NATS KV bucket, where `kiln projections` reads
// it: NATS is what a projector talks to even while MongoDB or Redis is down.
package status

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Bucket is the KV bucket of the reports.
const Bucket = "KILN_PROJECTOR_STATUS"

// TTL is how long a report lives unless renewed: a process that stopped
// leaves no report behind for long.
const TTL = time.Minute

// Report is one projection in one projector process.
type Report struct {
	Projection string    `json:"projection"`
	Process    string    `json:"process"`
	Dependency string    `json:"dependency"`
	Stalled    bool      `json:"stalled"`
	Since      time.Time `json:"since,omitzero"` // the outage's start
	LastError  string    `json:"lastError,omitempty"`
	Failures   int64     `json:"failures,omitempty"` // failed attempts in the outage
	At         time.Time `json:"at"`
}

// Open creates or binds the bucket.
func Open(ctx context.Context, js jetstream.JetStream) (jetstream.KeyValue, error) {
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket: Bucket, Description: "Kiln projector processes' store health", TTL: TTL, History: 1,
	})
	if err != nil {
		return nil, fmt.Errorf("status bucket: %w", err)
	}
	return kv, nil
}

// Publish writes r under its projection and process.
func Publish(ctx context.Context, kv jetstream.KeyValue, r Report) error {
	b, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("encode status: %w", err)
	}
	if _, err := kv.Put(ctx, key(r.Projection, r.Process), b); err != nil {
		return fmt.Errorf("publish status: %w", err)
	}
	return nil
}

// List returns every live report (none when no projector ever ran).
func List(ctx context.Context, js jetstream.JetStream) ([]Report, error) {
	kv, err := js.KeyValue(ctx, Bucket)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("status bucket: %w", err)
	}
	lister, err := kv.ListKeys(ctx)
	if err != nil {
		return nil, fmt.Errorf("list status: %w", err)
	}
	var out []Report
	for k := range lister.Keys() {
		e, err := kv.Get(ctx, k)
		if err != nil {
			continue // expired meanwhile
		}
		var r Report
		if json.Unmarshal(e.Value(), &r) == nil {
			out = append(out, r)
		}
	}
	return out, nil
}

// key is projection.process with the process name reduced to the
// characters a KV key may hold.
func key(projection, process string) string {
	clean := func(s string) string {
		return strings.Map(func(r rune) rune {
			if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' {
				return r
			}
			return '_'
		}, s)
	}
	return clean(projection) + "." + clean(process)
}
