package readmodel

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// A generation is one complete copy of a read model. Generation 0 is the
// one Kiln starts with; a replay builds generation N+1 beside the live one
// and then switches a pointer, which readers and the live projector follow
// on every call. FerretDB has no renameCollection with dropTarget, and a
// pointer also makes the switch a single atomic write in each store.
//
// MongoDB: the document {_id: "history", gen: N} in the generations
// collection names the live history; generation N lives in events_g<N>
// (generation 0 in events).
// Redis: the key kiln:generation holds the live counters generation;
// generation N's counters use the key prefix kiln:{g<N>}: and its recent
// cache kiln:{g<N>:recent}: (see keys.go). A flushed Redis loses the
// pointer too and falls back to generation 0, which the projector then
// rebuilds.

const (
	generationsCollection = "generations"
	historyPointer        = "history"
	countersPointerKey    = keyNamespace + "generation"
)

// CollectionsFor names the collections of a history generation.
func CollectionsFor(gen int64) Collections {
	if gen == 0 {
		return DefaultCollections()
	}
	s := "_g" + strconv.FormatInt(gen, 10)
	return Collections{Events: DefaultCollections().Events + s}
}

// legacyRollups names the per-minute rollups collection of a generation,
// which Kiln no longer writes; it is dropped with its generation.
func legacyRollups(gen int64) string {
	if gen == 0 {
		return "rollups_minute"
	}
	return "rollups_minute_g" + strconv.FormatInt(gen, 10)
}

// PrefixFor is the Redis key prefix of a counters generation.
func PrefixFor(gen int64) string {
	return keyNamespace + genTag(gen) + ":"
}

// HistoryGeneration returns the live history generation.
func HistoryGeneration(ctx context.Context, db *mongo.Database) (int64, error) {
	var doc struct {
		Gen int64 `bson:"gen"`
	}
	err := db.Collection(generationsCollection).FindOne(ctx, bson.D{{Key: "_id", Value: historyPointer}}).Decode(&doc)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("read history generation: %w", err)
	}
	return doc.Gen, nil
}

// SwitchHistory makes gen the live history generation, remembering the
// previous one and when it may be dropped.
func SwitchHistory(ctx context.Context, db *mongo.Database, gen, previous int64, dropAfter time.Time) error {
	_, err := db.Collection(generationsCollection).UpdateOne(ctx,
		bson.D{{Key: "_id", Value: historyPointer}},
		bson.D{{Key: "$set", Value: bson.D{
			{Key: "gen", Value: gen}, {Key: "previous", Value: previous},
			{Key: "dropAfter", Value: dropAfter.UnixMilli()}, {Key: "switchedAt", Value: time.Now().UnixMilli()},
		}}},
		options.UpdateOne().SetUpsert(true))
	if err != nil {
		return fmt.Errorf("switch history to generation %d: %w", gen, err)
	}
	return nil
}

// DropHistory drops the collections of a history generation that is not live.
func DropHistory(ctx context.Context, db *mongo.Database, gen int64) error {
	live, err := HistoryGeneration(ctx, db)
	if err != nil {
		return err
	}
	if gen == live {
		return fmt.Errorf("generation %d is live; not dropping it", gen)
	}
	// rollups_minute… is what versions before issue 12 also wrote.
	for _, name := range []string{CollectionsFor(gen).Events, legacyRollups(gen)} {
		if err := db.Collection(name).Drop(ctx); err != nil {
			return fmt.Errorf("drop %s: %w", name, err)
		}
	}
	return nil
}

// CountersGeneration returns the live counters generation.
func CountersGeneration(ctx context.Context, rdb redis.UniversalClient) (int64, error) {
	v, err := rdb.Get(ctx, countersPointerKey).Int64()
	if errors.Is(err, redis.Nil) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("read counters generation: %w", err)
	}
	return v, nil
}

// SwitchCounters makes gen the live counters generation.
func SwitchCounters(ctx context.Context, rdb redis.UniversalClient, gen int64) error {
	if err := rdb.Set(ctx, countersPointerKey, gen, 0).Err(); err != nil {
		return fmt.Errorf("switch counters to generation %d: %w", gen, err)
	}
	return nil
}

// DropCounters deletes every key of a counters generation that is not live.
// UNLINK: Redis frees the values (a cache of 100,000 events) in a thread of
// its own, not in the one that serves the live generation.
func DropCounters(ctx context.Context, rdb redis.UniversalClient, gen int64) error {
	live, err := CountersGeneration(ctx, rdb)
	if err != nil {
		return err
	}
	if gen == live {
		return fmt.Errorf("counters generation %d is live; not dropping it", gen)
	}
	for _, prefix := range []string{PrefixFor(gen), RecentPrefixFor(PrefixFor(gen))} {
		if err := unlinkAll(ctx, rdb, prefix); err != nil {
			return fmt.Errorf("drop counters generation %d: %w", gen, err)
		}
	}
	return nil
}

// unlinkAll deletes every key under prefix. Every key under one prefix
// shares a slot: one UNLINK per batch.
func unlinkAll(ctx context.Context, rdb redis.UniversalClient, prefix string) error {
	return scanKeys(ctx, rdb, prefix+"*", func(ctx context.Context, c redis.UniversalClient, keys []string) error {
		return c.Unlink(ctx, keys...).Err()
	})
}
