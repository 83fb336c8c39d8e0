package delivery

import (
	"context"
	"fmt"
	"time"

	"github.com/cenkalti/backoff/v5"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/kilnhq/kiln/notifier/internal/channel"
	"github.com/kilnhq/kiln/notifier/internal/jobs"
	"github.com/kilnhq/kiln/notifier/internal/metrics"
	"github.com/kilnhq/kiln/readmodel"
	"github.com/kilnhq/kiln/schemas/redelivery"
)

// recordTries bounds how often "sent" is written before the job is left
// to come back (and be sent again): a sent alert must be recorded.
const recordTries = 5

// sent records a delivery the channel accepted, then acks its job.
func (w *Worker) sent(ctx context.Context, m jetstream.Msg, job jobs.Job, d readmodel.Delivery) {
	now := time.Now().UnixMilli()
	d.Status, d.Attempts, d.SentAt, d.UpdatedAt, d.LastError, d.NextAt = readmodel.DeliverySent, d.Attempts+1, now, now, "", 0
	if err := w.save(ctx, m, d); err != nil {
		w.Log.Error("sent but not recorded; the job comes back and may send again", "channel", w.Name, "delivery", d.ID, "err", err)
		return
	}
	if w.crash(CrashAfterRecord, d.ID) {
		return
	}
	_ = m.Ack()
	w.Metrics.Deliveries.WithLabelValues(w.Name, metrics.Sent).Inc()
	w.Log.Info("alert delivered", "channel", w.Name, "delivery", d.ID, "rule", job.Alert.Rule, "attempts", d.Attempts)
}

// failed records a failed channel attempt and schedules the next, or moves
// the job to the DLQ after the last attempt or a permanent error. Only
// channel attempts count (d.Tries): redeliveries after a MongoDB error or an
// expired AckWait never brought the job to the channel.
func (w *Worker) failed(ctx context.Context, m jetstream.Msg, job jobs.Job, d readmodel.Delivery, seq uint64, cause error) {
	now := time.Now()
	d.Attempts++
	d.Tries++
	attempt := d.Tries
	d.LastError, d.UpdatedAt = cause.Error(), now.UnixMilli()
	if channel.IsPermanent(cause) || attempt >= w.Config.MaxAttempts {
		dead := jobs.DeadLetter{Job: job, Error: cause.Error(), Attempts: attempt, FailedAt: now.UnixMilli()}
		if err := jobs.PublishDead(ctx, w.JetStream, dead, seq); err != nil {
			w.retryLater(ctx, m, d.ID, err)
			return
		}
		d.Status, d.NextAt = readmodel.DeliveryDead, 0
		if err := w.save(ctx, m, d); err != nil {
			// Not terminated: a job whose dead state is not stored comes
			// back (its dead letter is deduplicated by seq) rather than
			// leaving its delivery "retrying" for good.
			w.retryLater(ctx, m, d.ID, fmt.Errorf("record dead delivery: %w", err))
			return
		}
		_ = m.TermWithReason("moved to " + jobs.DLQStream)
		w.Metrics.Deliveries.WithLabelValues(w.Name, metrics.Dead).Inc()
		w.Log.Error("alert delivery failed for good; moved to the DLQ", "channel", w.Name, "delivery", d.ID,
			"rule", job.Alert.Rule, "attempts", attempt, "err", cause)
		return
	}
	delay := w.Config.retryDelay(attempt)
	if ra, ok := channel.RetryAfter(cause); ok {
		delay = min(ra, w.Config.BackoffMax) // the receiver's wish, within reason
	}
	d.Status, d.NextAt = readmodel.DeliveryRetrying, now.Add(delay).UnixMilli()
	sctx, cancel := context.WithTimeout(ctx, storeTimeout)
	defer cancel()
	if err := w.Store.SaveDelivery(sctx, d); err != nil {
		// The attempt goes uncounted: one more than MaxAttempts, never fewer.
		w.Log.Warn("record failed attempt", "channel", w.Name, "delivery", d.ID, "err", err)
	}
	_ = m.NakWithDelay(delay)
	w.Metrics.Deliveries.WithLabelValues(w.Name, metrics.Retry).Inc()
	w.Log.Warn("alert delivery failed; retrying", "channel", w.Name, "delivery", d.ID, "attempt", attempt, "delay", delay, "err", cause)
}

// save stores d, trying up to recordTries times, 200 ms after the first
// failure and doubling up to 1 s, while keeping the job in progress.
func (w *Worker) save(ctx context.Context, m jetstream.Msg, d readmodel.Delivery) error {
	_, err := backoff.Retry(ctx, func() (struct{}, error) {
		sctx, cancel := context.WithTimeout(ctx, storeTimeout)
		err := w.Store.SaveDelivery(sctx, d)
		cancel()
		if err == nil || ctx.Err() != nil {
			return struct{}{}, backoff.Permanent(err)
		}
		_ = m.InProgress()
		return struct{}{}, err
	}, backoff.WithBackOff(&backoff.ExponentialBackOff{InitialInterval: 200 * time.Millisecond, Multiplier: 2, MaxInterval: time.Second}),
		backoff.WithMaxTries(recordTries))
	return err
}

// retryDelay is the delay after failed channel attempt n (1-based):
// BackoffBase·2^(n-1), capped at BackoffMax.
func (c Config) retryDelay(n int) time.Duration {
	return redelivery.Delay(redelivery.Exponential(c.BackoffBase, c.BackoffMax), uint64(max(n, 1)))
}
