package endpoint

import (
	"context"
	"sync"
	"time"
)

// Cache keeps a snapshot of every endpoint for the dispatcher, reloaded at
// most every ttl, and at once after Invalidate (the admin API calls it on
// every change it makes in this process).
type Cache struct {
	store *Store
	ttl   time.Duration

	mu     sync.Mutex
	loaded time.Time
	all    []*Endpoint
	byID   map[string]*Endpoint
}

// NewCache returns a cache over store.
func NewCache(store *Store, ttl time.Duration) *Cache {
	return &Cache{store: store, ttl: ttl}
}

// Invalidate makes the next read reload.
func (c *Cache) Invalidate() {
	c.mu.Lock()
	c.loaded = time.Time{}
	c.mu.Unlock()
}

// All returns the endpoints; the slice and its endpoints must not be changed.
func (c *Cache) All(ctx context.Context) ([]*Endpoint, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.refresh(ctx); err != nil {
		return nil, err
	}
	return c.all, nil
}

// Get returns one endpoint, nil if there is none with id.
func (c *Cache) Get(ctx context.Context, id string) (*Endpoint, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.refresh(ctx); err != nil {
		return nil, err
	}
	return c.byID[id], nil
}

func (c *Cache) refresh(ctx context.Context) error {
	if !c.loaded.IsZero() && time.Since(c.loaded) < c.ttl {
		return nil
	}
	all, err := c.store.List(ctx)
	if err != nil {
		if c.all != nil {
			return nil // serve the last snapshot while MongoDB is away
		}
		return err
	}
	byID := make(map[string]*Endpoint, len(all))
	for _, e := range all {
		byID[e.ID] = e
	}
	c.all, c.byID, c.loaded = all, byID, time.Now()
	return nil
}
