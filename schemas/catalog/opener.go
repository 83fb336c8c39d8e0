package catalog

import (
	"context"
	"sync"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/kilnhq/kiln/schemas"
)

// Opener opens the catalog on first use and seeds it with the embedded
// schemas, retrying on the next use when NATS did not answer: a role may
// start before JetStream does.
type Opener struct {
	JetStream jetstream.JetStream
	Stream    schemas.StreamOptions

	mu  sync.Mutex
	cat *Catalog
}

// Get is the open catalog.
func (o *Opener) Get(ctx context.Context) (*Catalog, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.cat != nil {
		return o.cat, nil
	}
	c, err := Open(ctx, o.JetStream, o.Stream)
	if err != nil {
		return nil, err
	}
	docs, err := schemas.Embedded()
	if err != nil {
		return nil, err
	}
	if err := c.Seed(ctx, docs); err != nil {
		return nil, err
	}
	o.cat = c
	return c, nil
}
