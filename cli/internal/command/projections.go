package command

import (
	"context"
	"errors"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/spf13/cobra"

	"github.com/kilnhq/kiln/projector/replay"
	"github.com/kilnhq/kiln/projector/status"
	"github.com/kilnhq/kiln/readmodel"
)

func projectionsCommand(c *conn) *cobra.Command {
	return &cobra.Command{
		Use:   "projections",
		Short: "Show each projection's checkpoint, lag, store status, generation, replay and last error",
		Example: `  kiln projections
  kiln projections --nats nats://nats:4222 --mongo mongodb://mongo:27017 --redis redis://redis:6379/0`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			deps, err := c.replayDeps()
			if err != nil {
				return err
			}
			js, db, rdb := deps.JetStream, deps.Mongo, deps.Redis
			stream, err := eventsStream(ctx, js)
			if err != nil {
				return err
			}
			// A store that is down is what this command is often run to
			// see: its columns say so, the others are still shown.
			storeCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
			defer cancel()
			states, statesErr := replay.States(storeCtx, db)
			errs, errsErr := readmodel.NewLedger(db).Errors(storeCtx, 100)
			reports, err := status.List(ctx, js)
			if err != nil {
				return err
			}
			gens := map[string]func(context.Context) (int64, error){
				replay.History:  func(ctx context.Context) (int64, error) { return readmodel.HistoryGeneration(ctx, db) },
				replay.Counters: func(ctx context.Context) (int64, error) { return readmodel.CountersGeneration(ctx, rdb) },
				// The recent-events cache lives in the counters' Redis
				// generation and is rebuilt with them.
				recentProjection: func(ctx context.Context) (int64, error) { return readmodel.CountersGeneration(ctx, rdb) },
			}
			w := tabwriter.NewWriter(c.io.Out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "PROJECTION\tCHECKPOINT\tLAG\tSTATUS\tGENERATION\tREPLAY\tLAST ERROR")
			for _, name := range append(replay.Projections(), recentProjection) {
				checkpoint, lag := consumerState(ctx, stream, "projector-"+name)
				gen := "?"
				if g, err := gens[name](storeCtx); err == nil {
					gen = fmt.Sprint(g)
				}
				replayCol, lastErr := "?", "?"
				if statesErr == nil {
					replayCol = replayNote(states, name)
				}
				if errsErr == nil {
					lastErr = lastError(errs, name)
				}
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", name, checkpoint, lag,
					statusNote(reports, name, time.Now()), gen, replayCol, lastErr)
			}
			return w.Flush()
		},
	}
}

// statusNote summarises the projector processes' reports on a projection:
// "ok (2 processes)", or since when and on what it is stalled.
func statusNote(reports []status.Report, name string, now time.Time) string {
	n := 0
	for _, r := range reports {
		if r.Projection != name {
			continue
		}
		n++
		if r.Stalled {
			return fmt.Sprintf("stalled %s: waits for %s (%d attempts): %s",
				now.Sub(r.Since).Round(time.Second), r.Dependency, r.Failures, r.LastError)
		}
	}
	switch n {
	case 0:
		return "-"
	case 1:
		return "ok"
	default:
		return fmt.Sprintf("ok (%d processes)", n)
	}
}

// recentProjection is the recent-events cache's projection.
const recentProjection = "recent"

func consumerState(ctx context.Context, stream jetstream.Stream, durable string) (checkpoint, lag string) {
	cons, err := stream.Consumer(ctx, durable)
	if errors.Is(err, jetstream.ErrConsumerNotFound) {
		return "-", "not running"
	}
	if err != nil {
		return "?", err.Error()
	}
	info, err := cons.Info(ctx)
	if err != nil {
		return "?", err.Error()
	}
	return fmt.Sprint(info.AckFloor.Stream), fmt.Sprint(info.NumPending + uint64(info.NumAckPending))
}

func replayNote(states []replay.State, name string) string {
	for _, s := range states {
		if s.Projection == name {
			return fmt.Sprintf("%s (gen %d at seq %d)", s.Status, s.Generation, s.Position)
		}
	}
	return "-"
}

func lastError(errs []readmodel.ProjectionError, name string) string {
	for _, e := range errs {
		if e.Projection == name {
			return fmt.Sprintf("seq %d: %s", e.Seq, e.Reason)
		}
	}
	return "-"
}
