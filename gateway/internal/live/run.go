package live

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/cenkalti/backoff/v5"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/kilnhq/kiln/gateway/internal/metrics"
	"github.com/kilnhq/kiln/schemas"
)

// restartBackoff spaces the restarts of the hub's consumer: 250 ms,
// doubling up to 5 s, from 250 ms again after a consumer that ran a minute.
func restartBackoff() *backoff.ExponentialBackOff {
	return &backoff.ExponentialBackOff{InitialInterval: 250 * time.Millisecond, Multiplier: 2, MaxInterval: 5 * time.Second}
}

// Run feeds the hub from the stream until ctx is done, then ends every
// client's stream and returns nil. It keeps one ordered consumer on every
// event subject, starting Buffer events before the stream's last sequence
// at start (those fill the hub's recent events; the hub is ready once they
// are read); when
// that consumer stops for good (the connection closed) it is recreated
// after the last sequence fanned out, so clients see no gap and no
// duplicate. The nats.go ordered consumer recreates itself the same way on
// reconnects and missed heartbeats.
func (h *Hub) Run(ctx context.Context) error {
	if !h.start() {
		return errors.New("live: the hub runs only once")
	}
	if h.opts.AlertSubject != "" {
		sub, err := h.opts.JetStream.Conn().Subscribe(h.opts.AlertSubject, h.handleAlert)
		if err != nil {
			h.shutdown()
			return fmt.Errorf("live: subscribe to new alerts on %s: %w", h.opts.AlertSubject, err)
		}
		defer func() { _ = sub.Unsubscribe() }()
	}
	var wg sync.WaitGroup
	wg.Go(func() { every(ctx, h.opts.Heartbeat, func(context.Context) { h.ping.fire(nil) }) })
	if h.opts.Snapshot != nil {
		wg.Go(func() { every(ctx, h.opts.MetricsInterval, h.publishMetrics) })
	}
	if h.opts.Summary != nil {
		wg.Go(func() { every(ctx, h.opts.MetricsInterval, h.publishSummary) })
	}
	wg.Go(func() { every(ctx, h.opts.LagInterval, h.watchLag) })
	restarts := restartBackoff()
	for ctx.Err() == nil {
		began := time.Now()
		err := h.consume(ctx)
		if ctx.Err() != nil {
			break
		}
		if time.Since(began) > time.Minute {
			restarts.Reset()
		}
		wait := restarts.NextBackOff()
		h.opts.Log.Warn("live stream consumer stopped; restarting", "err", err, "in", wait)
		select {
		case <-ctx.Done():
		case <-time.After(wait):
		}
	}
	h.shutdown()
	wg.Wait()
	// The streams' writes fail after shutdownGrace; catch-ups delete their
	// consumer within deleteTimeout.
	h.waitSessions(shutdownGrace + deleteTimeout)
	return nil
}

// consume runs one ordered consumer until ctx is done or it stops.
func (h *Hub) consume(ctx context.Context) error {
	start, err := h.startSeq(ctx)
	if err != nil {
		return err
	}
	oc, err := h.opts.JetStream.OrderedConsumer(ctx, schemas.StreamName, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{schemas.SubjectAll},
		DeliverPolicy:  jetstream.DeliverByStartSequencePolicy,
		OptStartSeq:    start,
	})
	if err != nil {
		return fmt.Errorf("create live consumer at seq %d: %w", start, err)
	}
	if info := oc.CachedInfo(); info != nil && info.NumPending == 0 {
		h.markReady() // nothing left of the start-up backlog (deleted meanwhile)
	}
	cc, err := oc.Consume(h.handle, jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
		h.opts.Log.Debug("live stream consumer", "err", err)
	}))
	if err != nil {
		return fmt.Errorf("consume live events: %w", err)
	}
	closed := cc.Closed()
	select {
	case <-ctx.Done():
		cc.Stop()
		return nil
	case <-closed:
		return errors.New("live consumer closed")
	}
}

// startSeq is where the next consumer starts: the first time, Buffer
// events before the stream's last sequence (the hub's recent events; the
// hub is ready once that last sequence is fanned out), after the last
// sequence fanned out afterwards.
func (h *Hub) startSeq(ctx context.Context) (uint64, error) {
	h.mu.Lock()
	last, initialized := h.lastSeq, h.initialized
	h.mu.Unlock()
	if initialized {
		return last + 1, nil
	}
	ictx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	st, err := h.opts.JetStream.Stream(ictx, schemas.StreamName)
	if err != nil {
		return 0, fmt.Errorf("stream %s: %w", schemas.StreamName, err)
	}
	state := st.CachedInfo().State
	start := state.LastSeq + 1
	if back := uint64(h.opts.Buffer); state.LastSeq > 0 {
		start = max(state.FirstSeq, state.LastSeq-min(back, state.LastSeq)+1, 1)
	}
	h.mu.Lock()
	h.initialized = true
	h.lastSeq, h.readyAt = start-1, state.LastSeq
	h.recent.reset(start - 1)
	if start > state.LastSeq {
		h.markReadyLocked()
	}
	h.mu.Unlock()
	h.noteSeq(start - 1)
	return start, nil
}

func (h *Hub) isReady() bool {
	select {
	case <-h.ready:
		return true
	default:
		return false
	}
}

// markReady lets clients join: the start-up backlog is read.
func (h *Hub) markReady() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.markReadyLocked()
}

func (h *Hub) markReadyLocked() {
	if !h.isReady() {
		close(h.ready)
	}
}

// handle fans one stored message out to the subscribed clients whose
// filter it matches. A client whose mailbox is full is unsubscribed and
// its mailbox closed, which its writer turns into the slow-consumer frame.
func (h *Hub) handle(msg jetstream.Msg) {
	meta, err := msg.Metadata()
	if err != nil {
		h.opts.Log.Warn("live stream: message without metadata", "subject", msg.Subject(), "err", err)
		return
	}
	seq := meta.Sequence.Stream
	f, ferr := eventFrame(msg, seq)
	span := h.traceFanOut(msg, seq)
	defer span.End()
	h.mu.Lock()
	fresh := !h.closed && seq > h.lastSeq
	if fresh {
		h.lastSeq = seq
		if ferr == nil {
			h.recent.add(f)
			h.fanOut(f)
		}
		if seq >= h.readyAt || meta.NumPending == 0 {
			h.markReadyLocked()
		}
	}
	h.mu.Unlock()
	if !fresh {
		return
	}
	h.noteSeq(seq)
	if ferr != nil {
		h.opts.Log.Warn("live stream: skipping a message that is not an event", "err", ferr)
	}
}

// handleAlert fans a new alert out to the subscribed clients. Alerts are
// live only: a client that is not subscribed (connecting, or replaying a
// large backlog) does not get them later; GET /alerts lists them all.
func (h *Hub) handleAlert(msg *nats.Msg) {
	f, err := alertFrame(msg.Data)
	if err != nil {
		h.opts.Log.Warn("live stream: skipping an alert announcement", "subject", msg.Subject, "err", err)
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.closed {
		h.fanOut(f)
	}
}

// fanOut hands f to every subscribed client it matches. h.mu is held.
func (h *Hub) fanOut(f *Frame) {
	h.live.each(f, func(s *session) {
		if !s.req.Filter.matches(f) {
			return
		}
		if !s.box.put(f) {
			h.live.remove(s)
			s.overflowed = true
			if !s.catchingUp { // a catch-up retries; see resume
				h.opts.Metrics.Drop(metrics.DropSlowConsumer)
			}
		}
	})
}

// publishMetrics computes the metrics frame once for every client.
func (h *Hub) publishMetrics(ctx context.Context) {
	if h.clientCount() == 0 {
		return
	}
	sctx, cancel := context.WithTimeout(ctx, max(h.opts.MetricsInterval, time.Second))
	defer cancel()
	v, err := h.opts.Snapshot(sctx)
	if err != nil {
		if ctx.Err() == nil && !h.snapshotFailing {
			h.opts.Log.Warn("live stream: metrics snapshot failed; retrying every interval", "err", err)
		}
		h.snapshotFailing = true
		return
	}
	if h.snapshotFailing {
		h.opts.Log.Info("live stream: metrics snapshots work again")
		h.snapshotFailing = false
	}
	data, err := json.Marshal(v)
	if err != nil {
		h.opts.Log.Error("live stream: encode metrics", "err", err)
		return
	}
	h.snapshots.fire(dataFrame("metrics", data))
}
