package command

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/kilnhq/kiln/notifier/dlq"
)

// dlqCommand lists and redrives the notifier's dead letters: alert
// deliveries that ran out of attempts and wait in the ALERTS_DLQ stream.
func dlqCommand(c *conn) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "dlq",
		Short: "List and redrive the notifier's dead letters (ALERTS_DLQ)",
		Example: `  kiln dlq list
  kiln dlq redrive --all`,
	}
	var asJSON bool
	list := &cobra.Command{
		Use:   "list",
		Short: "List dead alert deliveries, oldest first",
		Example: `  kiln dlq list
  kiln dlq list --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			js, err := c.jetStream()
			if err != nil {
				return err
			}
			letters, err := dlq.List(cmd.Context(), js)
			if err != nil {
				return err
			}
			return dlq.Print(c.io.Out, letters, asJSON)
		},
	}
	list.Flags().BoolVar(&asJSON, "json", false, "print the dead letters as JSON")

	var ids []string
	var all bool
	redrive := &cobra.Command{
		Use:   "redrive [--id ALERT:CHANNEL]... | --all",
		Short: "Queue dead deliveries again; a delivery sent meanwhile is not sent twice",
		Example: `  kiln dlq redrive --id 3f2a…:slack
  kiln dlq redrive --all`,
		RunE: func(cmd *cobra.Command, args []string) error {
			ids = append(ids, args...)
			if all == (len(ids) > 0) {
				return errors.New("dlq redrive: give --all or delivery ids (--id alertID:channel), not both")
			}
			js, err := c.jetStream()
			if err != nil {
				return err
			}
			var done []dlq.DeadLetter
			if all {
				done, err = dlq.RedriveAll(cmd.Context(), js)
			} else {
				done, err = dlq.Redrive(cmd.Context(), js, ids)
			}
			for _, d := range done {
				fmt.Fprintf(c.io.Out, "redriven %s (dead letter %d)\n", d.Job.ID(), d.Seq)
			}
			if err != nil {
				return err
			}
			fmt.Fprintf(c.io.Out, "%d redriven\n", len(done))
			return nil
		},
	}
	redrive.Flags().StringArrayVar(&ids, "id", nil, "a dead delivery, alertID:channel as `kiln dlq list` shows it (repeatable)")
	redrive.Flags().BoolVar(&all, "all", false, "redrive every dead letter")
	cmd.AddCommand(list, redrive)
	return cmd
}
