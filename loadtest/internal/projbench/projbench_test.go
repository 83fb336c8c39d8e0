package projbench

import (
	"context"
	"slices"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/kilnhq/kiln/projector/replay"
	"github.com/kilnhq/kiln/readmodel"
	"github.com/kilnhq/kiln/schemas"
	"github.com/kilnhq/kiln/testsupport"
)

// The baseline must insert what readmodel stores: same fields, same values.
func TestDocsMatchStoredHistory(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := testsupport.StartMongo(t).Database(t)
	events := Synthesize(3, 7, time.Now())
	if _, err := readmodel.NewHistory(db, readmodel.DefaultCollections()).Apply(ctx, events); err != nil {
		t.Fatal(err)
	}
	for i, doc := range Docs(events) {
		want := doc.(bson.D)
		var got bson.D
		if err := db.Collection("events").FindOne(ctx, bson.D{{Key: "_id", Value: events[i].ID}}).Decode(&got); err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(keys(got), keys(want)) {
			t.Errorf("stored keys %v, baseline keys %v", keys(got), keys(want))
		}
		for _, k := range []string{"seq", "minute", "timestamp", "eventType"} {
			if value(got, k) != value(want, k) {
				t.Errorf("%s: stored %v, baseline %v", k, value(got, k), value(want, k))
			}
		}
	}
}

func keys(d bson.D) []string {
	out := make([]string, 0, len(d))
	for _, e := range d {
		out = append(out, e.Key)
	}
	return out
}

func value(d bson.D, key string) any {
	for _, e := range d {
		if e.Key == key {
			return e.Value
		}
	}
	return nil
}

func TestMeasureHistoryAndCountersCleanUp(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := testsupport.StartMongo(t).Database(t)
	rdb := testsupport.StartRedis(t).Client(t)
	for name, measure := range map[string]func() (Timing, error){
		"history":  func() (Timing, error) { return MeasureHistory(ctx, db, 200, 0) },
		"counters": func() (Timing, error) { return MeasureCounters(ctx, rdb, 200, 0) },
	} {
		tm, err := measure()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		got, base := tm.Rates()
		if tm.Events != 400 || got <= 0 || base <= 0 {
			t.Errorf("%s: %+v (%.0f/s, baseline %.0f/s)", name, tm, got, base)
		}
	}
	names, err := db.ListCollectionNames(ctx, bson.D{})
	if err != nil || len(names) != 0 {
		t.Errorf("collections left behind: %v, %v", names, err)
	}
	if left, err := rdb.Keys(ctx, CountersPrefix+"*").Result(); err != nil || len(left) != 0 {
		t.Errorf("keys left behind: %v, %v", left, err)
	}
}

// Fill, ReadStream and Replay see the same events: every one in the stream.
func TestFillReadStreamAndReplay(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	ns := testsupport.StartNATS(t)
	js := ns.JetStream(t)
	if _, err := schemas.EnsureStream(ctx, js, schemas.StreamOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := Fill(ctx, js, 120); err != nil {
		t.Fatal(err)
	}
	got, err := ReadStream(ctx, js, 1000)
	if err != nil || len(got) != 120 || got[0].Seq != 1 || got[119].Seq != 120 {
		t.Fatalf("read %d events, err %v", len(got), err)
	}
	if short, err := ReadStream(ctx, js, 10); err != nil || len(short) != 10 {
		t.Fatalf("limit 10: %d, %v", len(short), err)
	}
	deps := replay.Deps{JetStream: js, Mongo: testsupport.StartMongo(t).Database(t),
		Redis: testsupport.StartRedis(t).Client(t), Log: testsupport.Logger(t)}
	for _, p := range []string{replay.Counters, replay.History} {
		applied, took, err := Replay(ctx, deps, p)
		if err != nil || applied != 120 || took <= 0 {
			t.Fatalf("replay %s: %d applied in %v, %v", p, applied, took, err)
		}
	}
	if took, err := RawIncrAll(ctx, deps.Redis, got); err != nil || took <= 0 {
		t.Fatalf("raw incr: %v, %v", took, err)
	}
}

func TestParseCommandStats(t *testing.T) {
	t.Parallel()
	got := parseCommandStats("# Commandstats\r\ncmdstat_evalsha:calls=658,usec=838489,usec_per_call=1274.30,rejected_calls=0\r\n" +
		"cmdstat_hincrby:calls=3,usec=12,usec_per_call=4.00\r\nnot_a_stat:usec=1\r\n")
	if got["evalsha"] != 838489*time.Microsecond || got["hincrby"] != 12*time.Microsecond || len(got) != 2 {
		t.Errorf("parsed %v", got)
	}
	if d := Since(map[string]time.Duration{"hincrby": 2 * time.Microsecond}, got); d["hincrby"] != 10*time.Microsecond {
		t.Errorf("since: %v", d)
	}
}
