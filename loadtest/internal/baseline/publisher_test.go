package baseline

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/kilnhq/kiln/schemas"
	"github.com/kilnhq/kiln/testsupport"
)

const subject = "events.bench_baseline"

func connect(t *testing.T, url string) (*Publisher, error) {
	t.Helper()
	return Connect(context.Background(), Options{
		URL: url, Subject: subject, Data: []byte(`{"id":"x"}`), UserID: "u",
		MaxPending: 1024, Timeout: 5 * time.Second,
	})
}

func count(t *testing.T, js jetstream.JetStream) uint64 {
	t.Helper()
	s, err := js.Stream(context.Background(), schemas.StreamName)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Msgs
}

func TestPublishWindowSyncAndPurge(t *testing.T) {
	t.Parallel()
	ns := testsupport.StartNATS(t)
	js := ns.JetStream(t)
	if _, err := schemas.EnsureStream(context.Background(), js, schemas.StreamOptions{}); err != nil {
		t.Fatal(err)
	}
	p, err := connect(t, ns.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	ctx := context.Background()
	if n, err := p.Window(ctx, 100); n != 100 || err != nil {
		t.Fatalf("Window = %d, %v", n, err)
	}
	if err := p.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	// Every message has its own Nats-Msg-Id, so none was deduplicated.
	if got := count(t, js); got != 101 {
		t.Fatalf("stream holds %d messages, want 101", got)
	}
	s, _ := js.Stream(ctx, schemas.StreamName)
	msg, err := s.GetMsg(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	if msg.Subject != subject || string(msg.Data) != `{"id":"x"}` || msg.Header.Get(schemas.HeaderUserID) != "u" ||
		!strings.HasPrefix(msg.Header.Get(schemas.HeaderMsgID), "bench-") {
		t.Errorf("message %s %s %v", msg.Subject, msg.Data, msg.Header)
	}
	if err := p.Purge(ctx); err != nil {
		t.Fatal(err)
	}
	if got := count(t, js); got != 0 {
		t.Errorf("after purge the stream holds %d messages", got)
	}
}

func TestConnectNeedsTheEventsStream(t *testing.T) {
	t.Parallel()
	ns := testsupport.StartNATS(t)
	if _, err := connect(t, ns.URL()); err == nil || !strings.Contains(err.Error(), "is Kiln running") {
		t.Errorf("Connect without the stream = %v", err)
	}
	if _, err := connect(t, "nats://127.0.0.1:1"); err == nil {
		t.Error("Connect to a closed port succeeded")
	}
}
