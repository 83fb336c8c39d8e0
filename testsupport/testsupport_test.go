package testsupport

import (
	"context"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"
)

func TestNATSJetStreamSurvivesRestart(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	n := StartNATS(t)
	url := n.URL()
	js := n.JetStream(t)
	stream, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "SMOKE", Subjects: []string{"smoke.>"}})
	require.NoError(t, err)
	for _, body := range []string{"a", "b", "c"} {
		_, err := js.Publish(ctx, "smoke."+body, []byte(body))
		require.NoError(t, err)
	}
	requireStreamBodies(ctx, t, stream, "a", "b", "c")

	// Down: publishing fails. Shutdown is idempotent.
	n.Shutdown()
	n.Shutdown()
	require.Error(t, publishWithin(js, 250*time.Millisecond, "smoke.d", "d"))

	// Back on the same URL with the same data; the old connection reconnects.
	n.Restart(t)
	require.Equal(t, url, n.URL())
	require.Eventually(t, func() bool {
		return publishWithin(js, time.Second, "smoke.e", "e") == nil
	}, 3*time.Minute, 50*time.Millisecond)

	stream, err = n.JetStream(t).Stream(ctx, "SMOKE")
	require.NoError(t, err)
	// "d" was published while the server was down: it may or may not have
	// been buffered by the client and delivered on reconnect.
	info, err := stream.Info(ctx)
	require.NoError(t, err)
	if info.State.Msgs == 5 {
		requireStreamBodies(ctx, t, stream, "a", "b", "c", "d", "e")
	} else {
		requireStreamBodies(ctx, t, stream, "a", "b", "c", "e")
	}
}

func TestNATSWithStoreDir(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	dir := t.TempDir()
	first := StartNATS(t, WithStoreDir(dir))
	require.Equal(t, dir, first.StoreDir())
	kv, err := first.JetStream(t).CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: "cfg"})
	require.NoError(t, err)
	_, err = kv.PutString(ctx, "k", "v")
	require.NoError(t, err)
	first.Shutdown()

	second := StartNATS(t, WithStoreDir(dir))
	kv, err = second.JetStream(t).KeyValue(ctx, "cfg")
	require.NoError(t, err)
	entry, err := kv.Get(ctx, "k")
	require.NoError(t, err)
	require.Equal(t, "v", string(entry.Value()))
}

// publishWithin publishes body to subject and waits at most d for the ack.
func publishWithin(js jetstream.JetStream, d time.Duration, subject, body string) error {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()

	_, err := js.Publish(ctx, subject, []byte(body), jetstream.WithRetryAttempts(0))
	return err
}

// requireStreamBodies reads the whole stream with an ordered consumer.
func requireStreamBodies(ctx context.Context, t *testing.T, stream jetstream.Stream, want ...string) {
	t.Helper()

	cons, err := stream.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{})
	require.NoError(t, err)
	batch, err := cons.FetchNoWait(len(want) + 1)
	require.NoError(t, err)
	var got []string
	for msg := range batch.Messages() {
		got = append(got, string(msg.Data()))
	}
	require.NoError(t, batch.Error())
	require.Equal(t, want, got)
}

func TestMongoInsertFind(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	m := StartMongo(t)
	require.Regexp(t, `^mongodb://127\.0\.0\.1:\d+/$`, m.URI())
	db1, db2 := m.Database(t), m.Database(t)
	require.NotEqual(t, db1.Name(), db2.Name())

	coll := db1.Collection("events")
	_, err := coll.InsertOne(ctx, bson.D{{Key: "k", Value: "v1"}, {Key: "n", Value: 42}})
	require.NoError(t, err)

	var got struct {
		K string `bson:"k"`
		N int    `bson:"n"`
	}
	require.NoError(t, coll.FindOne(ctx, bson.D{{Key: "k", Value: "v1"}}).Decode(&got))
	require.Equal(t, "v1", got.K)
	require.Equal(t, 42, got.N)

	n, err := db2.Collection("events").CountDocuments(ctx, bson.D{})
	require.NoError(t, err)
	require.Zero(t, n, "databases from Database(t) must be isolated")
}

func TestRedisSetGet(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	r := StartRedis(t)
	c := r.Client(t)
	require.NoError(t, c.Set(ctx, "k", "v", 0).Err())
	got, err := c.Get(ctx, "k").Result()
	require.NoError(t, err)
	require.Equal(t, "v", got)

	opts, err := redis.ParseURL(r.URL())
	require.NoError(t, err)
	require.Equal(t, r.Addr(), opts.Addr)
}

func TestUniqueName(t *testing.T) {
	t.Parallel()

	valid := regexp.MustCompile(`^[a-zA-Z0-9_-]{1,63}$`)
	a, b := UniqueName(t), UniqueName(t)
	require.NotEqual(t, a, b)
	require.Regexp(t, valid, a)
	t.Run("a/very long subtest name with spaces, punctuation!? and ünïcödé "+strings.Repeat("x", 80), func(t *testing.T) {
		require.Regexp(t, valid, UniqueName(t))
	})
}

func TestLoggerDropsBelowWarn(t *testing.T) {
	t.Parallel()

	log := Logger(t)
	require.False(t, log.Enabled(context.Background(), -4))
	require.True(t, log.Enabled(context.Background(), 4))
	log.Warn("visible with -v", "k", "v")
}

func TestFreePortIsBelowTheEphemeralRangeAndNeverRepeats(t *testing.T) {
	t.Parallel()
	seen := map[int]bool{}
	for range 200 {
		p := FreePort(t)
		require.Less(t, p, ephemeralLow(), "outgoing connections take their local ports from the ephemeral range")
		require.False(t, seen[p], "port %d handed out twice", p)
		seen[p] = true
	}
}
