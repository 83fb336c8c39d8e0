package connect

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/redis/go-redis/v9"
	"go.mongodb.org/mongo-driver/v2/mongo"
)

// disconnectTimeout bounds how long closing a MongoDB client may take.
const disconnectTimeout = 5 * time.Second

// Set is the connections one process opened: Drain sends what its NATS
// connections still owe (acks, publishes) and Close closes everything in
// the reverse order of opening. The zero value is ready; Log, when set,
// receives the errors closing meets.
type Set struct {
	Log    *slog.Logger
	closes []func()
	nats   []*nats.Conn
}

// NATS opens a NATS connection (see NATS) and keeps it in the set.
func (s *Set) NATS(url, name string, use NATSUse) (*nats.Conn, error) {
	nc, err := NATS(url, name, use, s.log())
	if err != nil {
		return nil, err
	}
	s.nats, s.closes = append(s.nats, nc), append(s.closes, nc.Close)
	return nc, nil
}

// Mongo opens a MongoDB client (see Mongo) and keeps it in the set.
func (s *Set) Mongo(uri, name string, maxPool uint64) (*mongo.Client, error) {
	mc, err := Mongo(uri, name, maxPool)
	if err != nil {
		return nil, err
	}
	s.closes = append(s.closes, func() {
		ctx, cancel := context.WithTimeout(context.Background(), disconnectTimeout)
		defer cancel()
		if err := mc.Disconnect(ctx); err != nil {
			s.log().Warn("disconnect from MongoDB", "err", err)
		}
	})
	return mc, nil
}

// Redis opens a Redis client (see Redis) and keeps it in the set.
func (s *Set) Redis(url string) (redis.UniversalClient, error) {
	rdb, err := Redis(url)
	if err != nil {
		return nil, err
	}
	s.closes = append(s.closes, func() { _ = rdb.Close() })
	return rdb, nil
}

// Drain drains the NATS connections: what they were still sending (acks,
// publishes) is sent, then they close.
func (s *Set) Drain() error {
	var errs []error
	for _, nc := range s.nats {
		if err := nc.Drain(); err != nil && !errors.Is(err, nats.ErrConnectionClosed) {
			errs = append(errs, fmt.Errorf("drain NATS: %w", err))
		}
	}
	return errors.Join(errs...)
}

// Close closes every connection, the last opened first.
func (s *Set) Close() {
	for i := len(s.closes) - 1; i >= 0; i-- {
		s.closes[i]()
	}
	s.closes, s.nats = nil, nil
}

func (s *Set) log() *slog.Logger {
	if s.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return s.Log
}
