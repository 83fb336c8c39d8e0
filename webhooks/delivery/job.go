// Package delivery sends events to webhook endpoints. A fan-out consumer
// on EVENTS turns each event into one job per matching endpoint on the
// WEBHOOKS work-queue stream (Nats-Msg-Id = the webhook id, so a
// redelivered event queues nothing twice); workers send each job, record
// the attempt in the delivery log, then ack, or nak it with the retry
// schedule's delay. Jobs that run out of attempts are dead letters in the
// log, from which they can be redriven.
package delivery

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/kilnhq/kiln/schemas"
)

// Stream and subjects of the jobs.
const (
	Stream        = "WEBHOOKS"
	SubjectPrefix = "webhooks.deliver."
	// duplicates is how long the stream drops a repeated job id.
	duplicates = 2 * time.Hour
)

// Job is one event to deliver to one endpoint. Its stream message (msg)
// carries the fields in headers and the body as its data.
type Job struct {
	// WebhookID is the webhook-id header: the same for every attempt and
	// redrive of this event to this endpoint, so receivers can dedupe.
	WebhookID  string `json:"webhookId"`
	EndpointID string `json:"endpointId"`
	EventID    string `json:"eventId"`
	EventType  string `json:"eventType"`
	Seq        uint64 `json:"seq"`
	// Body is the request body, as sent.
	Body json.RawMessage `json:"body"`
	// Redrive is 0 for the first run; a redrive sets it to the attempts
	// made before it (unique per redrive, and where its schedule restarts).
	Redrive int `json:"redrive,omitempty"`
}

// Subject is where an endpoint's jobs are queued.
func Subject(endpointID string) string { return SubjectPrefix + endpointID }

// WebhookID derives the stable id of event × endpoint.
func WebhookID(eventID, endpointID string) string {
	sum := sha256.Sum256([]byte(eventID + "\x00" + endpointID))
	return "msg_" + base64.RawURLEncoding.EncodeToString(sum[:18])
}

// msgID is the job's Nats-Msg-Id.
func (j *Job) msgID() string {
	if j.Redrive == 0 {
		return j.WebhookID
	}
	return fmt.Sprintf("%s.redrive.%d", j.WebhookID, j.Redrive)
}

// Headers of a job message, one per field of the job.
const (
	headerWebhookID  = "Kiln-Webhook-Id"
	headerEndpointID = "Kiln-Endpoint-Id"
	headerEventID    = "Kiln-Event-Id"
	headerEventType  = "Kiln-Event-Type"
	headerSeq        = "Kiln-Seq"
	headerRedrive    = "Kiln-Redrive"
)

// msg is the job's stream message: its fields in headers, its body as the
// data, so no job is encoded or decoded as JSON (its body checked and
// copied each time: 6 % of the standalone's CPU while dispatching).
func (j *Job) msg() *nats.Msg {
	msg := nats.NewMsg(Subject(j.EndpointID))
	msg.Data = j.Body
	msg.Header.Set(schemas.HeaderMsgID, j.msgID())
	msg.Header.Set(headerWebhookID, j.WebhookID)
	msg.Header.Set(headerEndpointID, j.EndpointID)
	msg.Header.Set(headerEventID, j.EventID)
	msg.Header.Set(headerEventType, j.EventType)
	msg.Header.Set(headerSeq, strconv.FormatUint(j.Seq, 10))
	if j.Redrive != 0 {
		msg.Header.Set(headerRedrive, strconv.Itoa(j.Redrive))
	}
	return msg
}

// decodeJob reads a job message; one queued by an earlier version (or
// waiting as its retry) is the job as JSON.
func decodeJob(h nats.Header, data []byte) (Job, error) {
	id := h.Get(headerWebhookID)
	if id == "" {
		var j Job
		if err := json.Unmarshal(data, &j); err != nil {
			return j, fmt.Errorf("decode job: %w", err)
		}
		if j.WebhookID == "" {
			return j, errors.New("decode job: no webhook id")
		}
		return j, nil
	}
	j := Job{WebhookID: id, EndpointID: h.Get(headerEndpointID), EventID: h.Get(headerEventID),
		EventType: h.Get(headerEventType), Body: data}
	var err error
	if j.Seq, err = strconv.ParseUint(h.Get(headerSeq), 10, 64); err != nil {
		return j, fmt.Errorf("decode job %s: %s: %w", id, headerSeq, err)
	}
	if r := h.Get(headerRedrive); r != "" {
		if j.Redrive, err = strconv.Atoi(r); err != nil {
			return j, fmt.Errorf("decode job %s: %s: %w", id, headerRedrive, err)
		}
	}
	if j.EndpointID == "" {
		return j, fmt.Errorf("decode job %s: no %s", id, headerEndpointID)
	}
	return j, nil
}

// EnsureStream creates or updates the WEBHOOKS stream.
func EnsureStream(ctx context.Context, js jetstream.JetStream, replicas int) error {
	_, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name: Stream, Description: "Kiln webhooks: deliveries to do, one job per event and endpoint",
		Subjects: []string{SubjectPrefix + ">", RetryPrefix + ">"}, Retention: jetstream.WorkQueuePolicy,
		Storage: jetstream.FileStorage, Replicas: replicas, Duplicates: duplicates,
		// Waiting retries are scheduled messages (schedule.go).
		AllowMsgSchedules: true, AllowRollup: true,
	})
	if err != nil {
		return fmt.Errorf("ensure stream %s: %w", Stream, err)
	}
	return nil
}
