// Package dlq inspects and redrives the notifier's dead letters: alert
// deliveries that ran out of attempts and were moved to the ALERTS_DLQ
// stream with their last error. Redriving queues a dead delivery again;
// its channel worker sends it unless that delivery was sent meanwhile, so
// a redrive never sends an alert twice. The notifier command and the kiln
// CLI both use it.
package dlq

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/kilnhq/kiln/notifier/internal/jobs"
)

// DeadLetter is one dead delivery: the job (alert and channel), the last
// error, the attempts made and when it was given up on.
type DeadLetter = jobs.DeadLetter

// List returns every dead letter, oldest first.
func List(ctx context.Context, js jetstream.JetStream) ([]DeadLetter, error) {
	stream, err := js.Stream(ctx, jobs.DLQStream)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("stream %s: %w", jobs.DLQStream, err)
	}
	info, err := stream.Info(ctx)
	if err != nil {
		return nil, fmt.Errorf("stream %s: %w", jobs.DLQStream, err)
	}
	if info.State.Msgs == 0 {
		return nil, nil
	}
	cons, err := stream.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{})
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", jobs.DLQStream, err)
	}
	var out []DeadLetter
	for {
		batch, err := cons.FetchNoWait(256)
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", jobs.DLQStream, err)
		}
		n, done := 0, false
		for m := range batch.Messages() {
			n++
			meta, err := m.Metadata()
			if err != nil {
				return nil, fmt.Errorf("read %s: %w", jobs.DLQStream, err)
			}
			var d DeadLetter
			if err := json.Unmarshal(m.Data(), &d); err != nil {
				return nil, fmt.Errorf("dead letter %d: %w", meta.Sequence.Stream, err)
			}
			d.Seq = meta.Sequence.Stream
			out = append(out, d)
			done = meta.NumPending == 0 || d.Seq >= info.State.LastSeq
		}
		if err := batch.Error(); err != nil && !errors.Is(err, jetstream.ErrNoMessages) {
			return nil, fmt.Errorf("read %s: %w", jobs.DLQStream, err)
		}
		if done || n == 0 {
			return out, nil
		}
	}
}

// Redrive queues the dead deliveries named by ids ("alertID:channel", as
// List shows them) again and removes them from the dead letters. It
// redrives what it finds and then reports the ids it did not find.
func Redrive(ctx context.Context, js jetstream.JetStream, ids []string) ([]DeadLetter, error) {
	if len(ids) == 0 {
		return nil, errors.New("redrive: no delivery ids given")
	}
	return redrive(ctx, js, func(d DeadLetter) bool { return slices.Contains(ids, d.Job.ID()) }, ids)
}

// RedriveAll queues every dead delivery again.
func RedriveAll(ctx context.Context, js jetstream.JetStream) ([]DeadLetter, error) {
	return redrive(ctx, js, func(DeadLetter) bool { return true }, nil)
}

func redrive(ctx context.Context, js jetstream.JetStream, pick func(DeadLetter) bool, want []string) ([]DeadLetter, error) {
	letters, err := List(ctx, js)
	if err != nil {
		return nil, err
	}
	stream, err := js.Stream(ctx, jobs.DLQStream)
	if err != nil && len(letters) > 0 {
		return nil, fmt.Errorf("stream %s: %w", jobs.DLQStream, err)
	}
	var done []DeadLetter
	found := map[string]bool{}
	for _, d := range letters {
		if !pick(d) {
			continue
		}
		found[d.Job.ID()] = true
		job := d.Job
		job.Redrive = d.Seq
		// The message id makes a redrive retried after a failure queue
		// the job once.
		if err := jobs.Publish(ctx, js, job, fmt.Sprintf("%s:redrive:%d", job.ID(), d.Seq)); err != nil {
			return done, fmt.Errorf("redrive %s: %w", job.ID(), err)
		}
		if err := stream.DeleteMsg(ctx, d.Seq); err != nil && !errors.Is(err, jetstream.ErrMsgNotFound) {
			return done, fmt.Errorf("redrive %s: remove dead letter %d: %w", job.ID(), d.Seq, err)
		}
		done = append(done, d)
	}
	var missing []string
	for _, id := range want {
		if !found[id] {
			missing = append(missing, id)
		}
	}
	if len(missing) > 0 {
		return done, fmt.Errorf("redrive: no dead letter for %s", strings.Join(missing, ", "))
	}
	return done, nil
}

// Print writes letters as a table, or as indented JSON when asJSON is set,
// for the CLIs that list dead letters.
func Print(w io.Writer, letters []DeadLetter, asJSON bool) error {
	if asJSON {
		if letters == nil {
			letters = []DeadLetter{}
		}
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(letters)
	}
	if len(letters) == 0 {
		_, err := fmt.Fprintln(w, "no dead letters")
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SEQ\tDELIVERY\tRULE\tATTEMPTS\tFAILED AT\tERROR")
	for _, d := range letters {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%d\t%s\t%s\n", d.Seq, d.Job.ID(), d.Job.Alert.Rule, d.Attempts,
			time.UnixMilli(d.FailedAt).UTC().Format(time.RFC3339), d.Error)
	}
	return tw.Flush()
}
