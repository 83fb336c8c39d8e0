package command

import (
	"encoding/json"
	"fmt"
	"text/tabwriter"

	"github.com/spf13/cobra"
)

func streamCommand(c *conn) *cobra.Command {
	cmd := &cobra.Command{Use: "stream", Short: "Inspect the EVENTS stream", Example: "  kiln stream info"}
	var asJSON bool
	info := &cobra.Command{
		Use:   "info",
		Short: "Show the EVENTS stream's size, sequences, limits and consumers",
		Example: `  kiln stream info
  kiln stream info --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			stream, err := c.events(ctx)
			if err != nil {
				return err
			}
			si, err := stream.Info(ctx)
			if err != nil {
				return fmt.Errorf("stream info: %w", err)
			}
			if asJSON {
				enc := json.NewEncoder(c.io.Out)
				enc.SetIndent("", "  ")
				return enc.Encode(si)
			}
			w := tabwriter.NewWriter(c.io.Out, 0, 4, 2, ' ', 0)
			st := si.State
			fmt.Fprintf(w, "stream\t%s\nsubjects\t%v\nreplicas\t%d\ndedupe window\t%s\nmax age\t%s\n",
				si.Config.Name, si.Config.Subjects, si.Config.Replicas, si.Config.Duplicates, orForever(si.Config.MaxAge.String()))
			fmt.Fprintf(w, "messages\t%d\nbytes\t%d\nfirst seq\t%d (%s)\nlast seq\t%d (%s)\nconsumers\t%d\n",
				st.Msgs, st.Bytes, st.FirstSeq, st.FirstTime.Format("2006-01-02T15:04:05Z07:00"),
				st.LastSeq, st.LastTime.Format("2006-01-02T15:04:05Z07:00"), st.Consumers)
			return w.Flush()
		},
	}
	info.Flags().BoolVar(&asJSON, "json", false, "print JetStream's stream info as JSON")
	cmd.AddCommand(info)
	return cmd
}

func orForever(d string) string {
	if d == "0s" {
		return "forever"
	}
	return d
}
