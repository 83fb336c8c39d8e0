package command

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/spf13/cobra"

	"github.com/kilnhq/kiln/schemas"
)

func eventsCommand(c *conn) *cobra.Command {
	cmd := &cobra.Command{Use: "events", Short: "Read events from the stream", Example: "  kiln events tail --type order.*"}
	var (
		types []string
		since uint64
		limit int
	)
	tail := &cobra.Command{
		Use:   "tail",
		Short: "Print events as JSON lines as they are stored (Ctrl-C to stop)",
		Example: `  kiln events tail
  kiln events tail --type order.* --type payment.failed
  kiln events tail --since 1 --limit 10`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			stream, err := c.events(ctx)
			if err != nil {
				return err
			}
			subjects := []string{schemas.SubjectAll}
			if len(types) > 0 {
				subjects = subjects[:0]
				for _, t := range types {
					subjects = append(subjects, schemas.Subject(t))
				}
			}
			cfg := jetstream.OrderedConsumerConfig{FilterSubjects: subjects, DeliverPolicy: jetstream.DeliverNewPolicy}
			if since > 0 {
				cfg.DeliverPolicy, cfg.OptStartSeq = jetstream.DeliverByStartSequencePolicy, since+1
			}
			oc, err := stream.OrderedConsumer(ctx, cfg)
			if err != nil {
				return fmt.Errorf("consumer: %w", err)
			}
			for n := 0; limit == 0 || n < limit; {
				msg, err := oc.Next(jetstream.FetchMaxWait(time.Second))
				if ctx.Err() != nil {
					return nil
				}
				if err != nil {
					if !errors.Is(err, jetstream.ErrNoMessages) && !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, nats.ErrTimeout) {
						return fmt.Errorf("read: %w", err)
					}
					continue
				}
				meta, _ := msg.Metadata()
				var seq uint64
				if meta != nil {
					seq = meta.Sequence.Stream
				}
				fmt.Fprintf(c.io.Out, "{\"seq\":%d,\"event\":%s}\n", seq, msg.Data())
				n++
			}
			return nil
		},
	}
	tail.Flags().StringSliceVar(&types, "type", nil, "only these event types (NATS wildcards allowed: order.*, order.>); repeatable")
	tail.Flags().Uint64Var(&since, "since", 0, "start after this stream sequence instead of at new events")
	tail.Flags().IntVar(&limit, "limit", 0, "stop after this many events (0: never)")
	cmd.AddCommand(tail)
	return cmd
}
