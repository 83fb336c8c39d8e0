package catalog_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/kilnhq/kiln/schemas"
	"github.com/kilnhq/kiln/schemas/catalog"
	"github.com/kilnhq/kiln/testsupport"
)

const signup = `{"$schema":"https://json-schema.org/draft/2020-12/schema","allOf":[{"$ref":"envelope.json"}],
 "required":["metadata"],"properties":{"metadata":{"type":"object","required":["plan"],"properties":{"plan":{"type":"string"}}}}}`

func open(t *testing.T, n *testsupport.NATS) *catalog.Catalog {
	t.Helper()
	c, err := catalog.Open(context.Background(), n.JetStream(t), schemas.StreamOptions{})
	require.NoError(t, err)
	return c
}

func TestSeedRegistersTheEmbeddedSchemasOnce(t *testing.T) {
	ctx := context.Background()
	n := testsupport.StartNATS(t)
	c := open(t, n)
	docs, err := schemas.Embedded()
	require.NoError(t, err)
	require.NoError(t, c.Seed(ctx, docs))
	require.NoError(t, c.Seed(ctx, docs), "a second start")

	types, err := c.Types(ctx)
	require.NoError(t, err)
	require.Len(t, types, len(docs)-1, "every type but the envelope")
	for typ, n := range types {
		require.Equal(t, 1, n, typ)
		v, ok, err := c.Latest(ctx, typ)
		require.NoError(t, err)
		require.True(t, ok)
		require.Equal(t, 1, v.Version)
		require.JSONEq(t, string(docs[typ]), string(v.Schema))
	}
}

func TestPushAppendsVersionsThatSurviveARestart(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	n := testsupport.StartNATS(t, testsupport.WithStoreDir(dir))
	c := open(t, n)

	v1, unchanged, err := c.Push(ctx, "signup.completed", []byte(signup), "", false)
	require.NoError(t, err)
	require.False(t, unchanged)
	require.Equal(t, 1, v1.Version)
	same, unchanged, err := c.Push(ctx, "signup.completed", []byte(" "+signup+"\n"), "", false)
	require.NoError(t, err)
	require.True(t, unchanged, "the same document (spacing aside) is no new version")
	require.Equal(t, 1, same.Version)
	looser := strings.Replace(signup, `"required":["plan"],`, "", 1)
	v2, _, err := c.Push(ctx, "signup.completed", []byte(looser), "plan is optional now", true)
	require.NoError(t, err)
	require.Equal(t, 2, v2.Version)

	n.Shutdown()
	n2 := testsupport.StartNATS(t, testsupport.WithStoreDir(dir))
	vs, err := open(t, n2).Versions(ctx, "signup.completed")
	require.NoError(t, err)
	require.Len(t, vs, 2)
	require.Equal(t, []int{1, 2}, []int{vs[0].Version, vs[1].Version})
	require.Equal(t, "plan is optional now", vs[1].Reason)
	require.True(t, vs[1].Forced)
	require.JSONEq(t, looser, string(vs[1].Schema))
}

// Concurrent pushes of one type: each is a new version or ErrConflict,
// never two versions with one number.
func TestConcurrentPushesNeverShareAVersion(t *testing.T) {
	ctx := context.Background()
	c := open(t, testsupport.StartNATS(t))
	var wg sync.WaitGroup
	var won, lost atomic.Int64
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			doc := strings.Replace(signup, `"plan"`, fmt.Sprintf(`"plan%d"`, i), 2)
			_, _, err := c.Push(ctx, "signup.completed", []byte(doc), "", false)
			switch {
			case err == nil:
				won.Add(1)
			case errors.Is(err, catalog.ErrConflict):
				lost.Add(1)
			default:
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	vs, err := c.Versions(ctx, "signup.completed")
	require.NoError(t, err)
	require.Len(t, vs, int(won.Load()))
	for i, v := range vs {
		require.Equal(t, i+1, v.Version)
	}
	require.Equal(t, int64(8), won.Load()+lost.Load())
}

// Bad documents are refused with ErrInvalidSchema and register nothing;
// a $ref to the network is never fetched.
func TestInvalidDocumentsChangeNothing(t *testing.T) {
	ctx := context.Background()
	c := open(t, testsupport.StartNATS(t))
	var fetched atomic.Int64
	remote := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		fetched.Add(1)
		_, _ = w.Write([]byte(`{"type":"object"}`))
	}))
	defer remote.Close()

	cases := map[string]string{
		"not JSON":          `{"type":`,
		"not an object":     `["type"]`,
		"not a schema":      `{"type":"no-such-type"}`,
		"another $id":       `{"$id":"https://example.com/x.json","type":"object"}`,
		"network $ref":      `{"$ref":"` + remote.URL + `/s.json"}`,
		"unsupported regex": `{"properties":{"a":{"type":"string","pattern":"(?=a)b"}}}`,
		"too big":           `{"description":"` + strings.Repeat("x", catalog.MaxDocumentBytes) + `"}`,
		"1 MiB of nesting":  strings.Repeat(`{"not":`, 1<<20/7) + `{}` + strings.Repeat(`}`, 1<<20/7),
		"deep nesting":      strings.Repeat(`{"not":`, 20000) + `{}` + strings.Repeat(`}`, 20000),
		"65 levels":         strings.Repeat(`{"not":`, 64) + `{}` + strings.Repeat(`}`, 64),
	}
	for name, doc := range cases {
		t.Run(name, func(t *testing.T) {
			_, _, err := c.Push(ctx, "bad.type", []byte(doc), "", false)
			require.ErrorIs(t, err, catalog.ErrInvalidSchema)
		})
	}
	// Brackets and escaped quotes inside strings are not nesting.
	_, _, err := c.Push(ctx, "deep.enough", []byte(`{"description":"`+strings.Repeat(`{[\"`, 100)+`","not":`+
		strings.Repeat(`{"not":`, 62)+`{}`+strings.Repeat(`}`, 63)), "", false)
	require.NoError(t, err, "64 levels")
	_, _, err = c.Push(ctx, "bad type", []byte(`{}`), "", false)
	require.ErrorIs(t, err, catalog.ErrInvalidType)
	types, err := c.Types(ctx)
	require.NoError(t, err)
	require.Equal(t, map[string]int{"deep.enough": 1}, types, "nothing else was registered")
	require.Zero(t, fetched.Load(), "a schema was fetched from the network")
}

func TestWatchSeesExistingThenNewVersions(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c := open(t, testsupport.StartNATS(t))
	_, _, err := c.Push(ctx, "signup.completed", []byte(signup), "", false)
	require.NoError(t, err)

	seen := make(chan catalog.Version, 16)
	caughtUp := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- c.Watch(ctx, func(v catalog.Version) error { seen <- v; return nil }, func(catalog.Settings) error { return nil }, func() { close(caughtUp) })
	}()
	first := <-seen
	require.Equal(t, 1, first.Version)
	select {
	case <-caughtUp:
	case <-time.After(2 * time.Minute):
		t.Fatal("never caught up")
	}
	_, _, err = c.Push(ctx, "other.type", []byte(`{"type":"object"}`), "", false)
	require.NoError(t, err)
	select {
	case v := <-seen:
		require.Equal(t, "other.type", v.Type)
	case <-time.After(2 * time.Minute):
		t.Fatal("the new version never arrived")
	}
	cancel()
	require.ErrorIs(t, <-done, context.Canceled)
}

// Two instances following one catalog validate against a version pushed
// through either; an instance that loses the stream keeps its versions
// and says it is stale.
func TestLiveInstancesFollowPushes(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	n := testsupport.StartNATS(t)
	log := slog.New(slog.DiscardHandler)
	var lives []*catalog.Live
	for range 2 {
		l, err := catalog.NewLive(open(t, n), log)
		require.NoError(t, err)
		go func() { _ = l.Run(ctx) }()
		lives = append(lives, l)
	}
	event := map[string]any{"eventType": "signup.completed", "userId": "u1", "timestamp": json.Number("1700000000")}
	for _, l := range lives {
		select {
		case <-l.Ready():
		case <-time.After(2 * time.Minute):
			t.Fatal("never read the catalog")
		}
		require.NoError(t, l.Stale())
		require.Empty(t, l.Current().Registry.Validate(event), "no schema yet: the envelope alone")
	}
	_, _, err := open(t, n).Push(ctx, "signup.completed", []byte(signup), "", false)
	require.NoError(t, err)
	for _, l := range lives {
		require.Eventually(t, func() bool { return l.Current().Version("signup.completed") == 1 }, 2*time.Minute, 10*time.Millisecond)
		errs := l.Current().Registry.Validate(event)
		require.NotEmpty(t, errs, "version 1 requires metadata")
	}

	n.Shutdown()
	for _, l := range lives {
		require.Eventually(t, func() bool { return l.Stale() != nil }, 2*time.Minute, 10*time.Millisecond)
		require.Equal(t, 1, l.Current().Version("signup.completed"), "the last known version stays")
	}
}
