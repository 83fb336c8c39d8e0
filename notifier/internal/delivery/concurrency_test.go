package delivery

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/kilnhq/kiln/notifier/internal/alertstore"
	"github.com/kilnhq/kiln/notifier/internal/channel"
	"github.com/kilnhq/kiln/notifier/internal/jobs"
	"github.com/kilnhq/kiln/notifier/internal/metrics"
	"github.com/kilnhq/kiln/notifier/slacktest"
	"github.com/kilnhq/kiln/readmodel"
	"github.com/kilnhq/kiln/testsupport"
)

func TestConfigWithDefaults(t *testing.T) {
	t.Parallel()
	require.Equal(t, Config{MaxAttempts: DefaultMaxAttempts, BackoffBase: DefaultBackoffBase, BackoffMax: DefaultBackoffMax,
		AckWait: DefaultAckWait, SendTimeout: DefaultSendTimeout, Concurrency: DefaultConcurrency}, Config{}.WithDefaults())
	set := Config{MaxAttempts: 2, BackoffBase: time.Millisecond, BackoffMax: time.Second, AckWait: time.Second,
		SendTimeout: time.Second, Concurrency: 1}
	require.Equal(t, set, set.WithDefaults())
}

// A worker configured with the zero Config delivers (it used to start no
// goroutine to take the jobs and block forever handing over the first).
func TestZeroConfigWorkerDelivers(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	js := testsupport.StartNATS(t).JetStream(t)
	require.NoError(t, jobs.EnsureStreams(ctx, js, 1))
	store := alertstore.New(testsupport.StartMongo(t).Database(t))
	slack := slacktest.Start(t)
	ch, err := channel.NewSlack(slack.URL, time.Second)
	require.NoError(t, err)
	w := &Worker{Name: "slack", Channel: ch, JetStream: js, Store: store,
		Metrics: metrics.New(prometheus.NewRegistry()), Log: testsupport.Logger(t)}
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- w.Run(runCtx) }()
	t.Cleanup(func() { cancel(); require.NoError(t, <-done) })

	for _, id := range []string{"a1", "a2", "a3"} {
		a := readmodel.Alert{ID: id, Rule: "r", Kind: "each", Message: "alert " + id, Channels: []string{"slack"}}
		require.NoError(t, store.CreateDeliveries(ctx, a, time.Now().UnixMilli()))
		require.NoError(t, jobs.Publish(ctx, js, jobs.Job{Alert: a, Channel: "slack"}, id+":slack"))
	}
	require.Eventually(t, func() bool { return len(slack.Delivered()) == 3 }, 2*time.Minute, 20*time.Millisecond)
}
