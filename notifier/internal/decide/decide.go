package decide

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/kilnhq/kiln/notifier/internal/evaluate"
	"github.com/kilnhq/kiln/notifier/internal/jobs"
	"github.com/kilnhq/kiln/notifier/internal/rules"
	"github.com/kilnhq/kiln/readmodel"
	"github.com/kilnhq/kiln/schemas"
)

// CrashDecided is the crash point after an alert was stored and before its
// jobs were queued and its event acked.
const CrashDecided = "decided"

var errCrashed = errors.New("crash simulated")

// decide makes decision d durable: the alert stored once (by its
// deterministic id) and one job per channel queued. An alert stored
// before — a redelivered event, a restart, a second event of a window that
// already fired — is not decided again; its missing jobs are queued. A
// decision within its rule's throttle of the last alert for the same
// dedupe key is suppressed.
func (c *Consumer) decide(ctx context.Context, ev *schemas.Event, d evaluate.Decision) error {
	existing, found, err := c.Store.Get(ctx, d.AlertID)
	if err != nil {
		return err
	}
	if found {
		return c.ensure(ctx, existing, false)
	}
	dedupe, message, err := d.Rule.Render(ev, d.Window)
	if err != nil { // templates were checked at start; keep alerting regardless
		c.Log.Error("alert template failed", "rule", d.Rule.Name, "err", err)
		message = fmt.Sprintf("%s: %s for user %s (template error: %v)", d.Rule.Name, ev.EventType, ev.UserID, err)
	}
	if d.Rule.Throttle > 0 {
		suppressed, err := c.throttled(ctx, d, dedupe, ev.Timestamp)
		if err != nil || suppressed {
			return err
		}
	}
	a := readmodel.Alert{
		ID: d.AlertID, Rule: d.Rule.Name, Kind: d.Rule.Kind.String(), Message: message, DedupeKey: dedupe,
		Channels: d.Rule.Channels, EventID: ev.ID, EventType: ev.EventType, EventSeq: int64(ev.Seq),
		EventTimestamp: ev.Timestamp, UserID: ev.UserID, DecidedAt: time.Now().UnixMilli(),
	}
	if d.Rule.Kind == rules.Threshold {
		a.Group, a.WindowStart, a.WindowEnd, a.Count = d.Window.Group, d.Window.Start, d.Window.End, d.Window.Count
	}
	inserted, err := c.Store.Insert(ctx, a)
	if err != nil {
		return err
	}
	if !inserted { // decided meanwhile: take the stored one
		if a, _, err = c.Store.Get(ctx, d.AlertID); err != nil {
			return err
		}
	}
	return c.ensure(ctx, a, inserted)
}

// throttled reports whether the latest alert of d's rule and dedupe key
// was decided within the throttle of this event; if not, it marks this
// alert as the latest before it is stored, so a crash in between cannot
// let a repeat through (the mark names the alert, which it never
// suppresses itself).
func (c *Consumer) throttled(ctx context.Context, d evaluate.Decision, dedupe string, ts int64) (bool, error) {
	last, alertID, ok, err := c.Store.LastDecided(ctx, d.Rule.Name, dedupe)
	if err != nil {
		return false, err
	}
	if ok && alertID != d.AlertID && abs(ts-last) < d.Rule.Throttle.Milliseconds() {
		c.Metrics.Suppressed.WithLabelValues(d.Rule.Name).Inc()
		c.Log.Debug("alert suppressed by throttle", "rule", d.Rule.Name, "dedupe", dedupe, "alertId", d.AlertID)
		return true, nil
	}
	return false, c.Store.MarkDecided(ctx, d.Rule.Name, dedupe, d.AlertID, ts)
}

// ensure completes a stored alert's decision: its delivery documents, a
// job for each channel not yet sent or dead, and, for a new alert, the
// announcement to live clients.
func (c *Consumer) ensure(ctx context.Context, a readmodel.Alert, fresh bool) error {
	if c.Crash != nil && c.Crash(CrashDecided, a.ID) {
		return errCrashed
	}
	if err := c.Store.CreateDeliveries(ctx, a, time.Now().UnixMilli()); err != nil {
		return err
	}
	done := map[string]readmodel.Delivery{}
	if !fresh {
		var err error
		if done, err = c.Store.Deliveries(ctx, a.ID); err != nil {
			return err
		}
	}
	for _, ch := range a.Channels {
		if s := done[ch].Status; s == readmodel.DeliverySent || s == readmodel.DeliveryDead {
			continue
		}
		job := jobs.Job{Alert: a, Channel: ch}
		if err := jobs.Publish(ctx, c.JetStream, job, job.ID()); err != nil {
			return err
		}
	}
	if fresh {
		c.Metrics.Decided.WithLabelValues(a.Rule).Inc()
		c.announce(a)
	}
	return nil
}

// announce publishes a new alert on core NATS for the gateway's SSE
// clients, as GET /alerts shows it with every channel pending (best
// effort: the alert is stored whatever happens here).
func (c *Consumer) announce(a readmodel.Alert) {
	a.Status, a.Deliveries = readmodel.DeliveryPending, nil
	data, err := json.Marshal(a.View())
	if err == nil {
		err = c.JetStream.Conn().Publish(readmodel.NewAlertSubject, data)
	}
	if err != nil {
		c.Log.Warn("announce alert", "alertId", a.ID, "err", err)
	}
}

func abs(x int64) int64 {
	if x < 0 {
		return -x
	}
	return x
}
