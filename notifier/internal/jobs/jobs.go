// Package jobs is the notifier's delivery queue: the ALERTS work-queue
// stream holding one job per alert and channel (subject
// alerts.deliver.<channel>), and the ALERTS_DLQ stream the jobs that ran
// out of attempts are moved to (alerts.dlq.<channel>).
package jobs

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/kilnhq/kiln/readmodel"
	"github.com/kilnhq/kiln/schemas"
	"github.com/kilnhq/kiln/telemetry"
)

// Streams and subjects.
const (
	Stream           = "ALERTS"
	SubjectPrefix    = "alerts.deliver."
	DLQStream        = "ALERTS_DLQ"
	DLQSubjectPrefix = "alerts.dlq."
	// duplicates is how long both streams drop a repeated Nats-Msg-Id: a
	// job re-published after a crash within it is not queued twice (and a
	// second copy later still finds its delivery sent, and sends nothing).
	duplicates = time.Hour
)

// Job asks a channel's worker to deliver an alert.
type Job struct {
	Alert   readmodel.Alert `json:"alert"`
	Channel string          `json:"channel"`
	// Redrive is the ALERTS_DLQ sequence this job was redriven from.
	Redrive uint64 `json:"redrive,omitempty"`
}

// ID is the job's delivery id, "alertID:channel".
func (j Job) ID() string { return readmodel.DeliveryID(j.Alert.ID, j.Channel) }

// Subject is where jobs for channel are queued.
func Subject(channel string) string { return SubjectPrefix + channel }

// DLQSubject is where channel's dead letters go.
func DLQSubject(channel string) string { return DLQSubjectPrefix + channel }

// EnsureStreams creates or updates ALERTS and ALERTS_DLQ.
func EnsureStreams(ctx context.Context, js jetstream.JetStream, replicas int) error {
	for _, cfg := range []jetstream.StreamConfig{
		{
			Name: Stream, Description: "Kiln notifier: alert deliveries to do, one job per alert and channel",
			Subjects: []string{SubjectPrefix + ">"}, Retention: jetstream.WorkQueuePolicy,
			Storage: jetstream.FileStorage, Replicas: replicas, Duplicates: duplicates,
		},
		{
			Name: DLQStream, Description: "Kiln notifier: deliveries that ran out of attempts, for inspection and redrive",
			Subjects: []string{DLQSubjectPrefix + ">"}, Retention: jetstream.LimitsPolicy,
			Storage: jetstream.FileStorage, Replicas: replicas, Duplicates: duplicates, AllowDirect: true,
		},
	} {
		if _, err := js.CreateOrUpdateStream(ctx, cfg); err != nil {
			return fmt.Errorf("ensure stream %s: %w", cfg.Name, err)
		}
	}
	return nil
}

// Publish queues job under msgID and waits for JetStream to store it.
func Publish(ctx context.Context, js jetstream.JetStream, job Job, msgID string) error {
	return publishJSON(ctx, js, Subject(job.Channel), msgID, job)
}

// publishJSON stores v as JSON on subject, deduplicated by msgID.
func publishJSON(ctx context.Context, js jetstream.JetStream, subject, msgID string, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode %s: %w", subject, err)
	}
	msg := nats.NewMsg(subject)
	msg.Data = data
	msg.Header.Set(schemas.HeaderMsgID, msgID)
	telemetry.Inject(ctx, msg.Header) // the decision's span, parent of the delivery's
	if _, err := js.PublishMsg(ctx, msg); err != nil {
		return fmt.Errorf("publish %s %s: %w", subject, msgID, err)
	}
	return nil
}

// DeadLetter is a job that ran out of attempts, with why.
type DeadLetter struct {
	Seq      uint64 `json:"seq"` // in ALERTS_DLQ; set on read
	Job      Job    `json:"job"`
	Error    string `json:"error"`
	Attempts int    `json:"attempts"`
	FailedAt int64  `json:"failedAt"` // Unix ms
}

// PublishDead stores a dead letter. jobSeq, the ALERTS sequence of the
// job, makes a retried move idempotent.
func PublishDead(ctx context.Context, js jetstream.JetStream, d DeadLetter, jobSeq uint64) error {
	return publishJSON(ctx, js, DLQSubject(d.Job.Channel), fmt.Sprintf("%s:dead:%d", d.Job.ID(), jobSeq), d)
}
