package embedded

import (
	"fmt"

	"github.com/alicebob/miniredis/v2"
)

// Redis is an in-process Redis-protocol server (miniredis). Kiln keeps only
// rebuildable state in Redis, so standalone mode may run without a real one.
type Redis struct {
	srv *miniredis.Miniredis
}

// StartRedis listens on addr (host:port; port 0 picks a free one).
func StartRedis(addr string) (*Redis, error) {
	srv := miniredis.NewMiniRedis()
	if err := srv.StartAddr(addr); err != nil {
		return nil, fmt.Errorf("embedded redis: %w", err)
	}
	return &Redis{srv: srv}, nil
}

// URL is the redis:// URL of the server.
func (r *Redis) URL() string { return "redis://" + r.srv.Addr() }

// Shutdown stops the server.
func (r *Redis) Shutdown() { r.srv.Close() }
