package delivery

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// RetryPrefix is where waiting jobs are scheduled:
// webhooks.retry.<endpoint>.<webhook id>, one schedule per delivery (a
// newer one replaces it).
const RetryPrefix = "webhooks.retry."

// Headers of NATS message scheduling (nats-server 2.12+, ADR-51): the
// server stores a message carrying Nats-Schedule "@at <RFC 3339>" and, when
// due, publishes its data and headers to Nats-Schedule-Target, adding
// Nats-Scheduler (the schedule's subject), then removes the schedule.
const (
	headerSchedule       = "Nats-Schedule"
	headerScheduleTarget = "Nats-Schedule-Target"
	headerScheduler      = "Nats-Scheduler"
)

// retrySubject is the schedule subject of a delivery.
func retrySubject(endpointID, webhookID string) string {
	return RetryPrefix + endpointID + "." + webhookID
}

// schedule stores the job m carries to come back on its subject at due,
// marked as deferred that many times (0: a retry). The job's own headers
// (trace context) go with it; NATS's (Nats-*) do not: the server refuses a
// scheduler's headers from a client, and the fired message must not be
// deduped against the first.
func schedule(ctx context.Context, js jetstream.JetStream, m jetstream.Msg, job *Job, due time.Time, deferrals int) error {
	msg := nats.NewMsg(retrySubject(job.EndpointID, job.WebhookID))
	msg.Data = m.Data()
	for k, v := range m.Headers() {
		if !strings.HasPrefix(strings.ToLower(k), "nats-") {
			msg.Header[k] = v
		}
	}
	msg.Header.Del(headerDeferrals)
	if deferrals > 0 {
		msg.Header.Set(headerDeferrals, strconv.Itoa(deferrals))
	}
	msg.Header.Set(headerSchedule, "@at "+due.UTC().Format(time.RFC3339Nano))
	msg.Header.Set(headerScheduleTarget, Subject(job.EndpointID))
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	if _, err := js.PublishMsg(ctx, msg); err != nil {
		return fmt.Errorf("schedule %s: %w", job.WebhookID, err)
	}
	return nil
}
