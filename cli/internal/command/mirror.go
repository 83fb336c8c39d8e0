package command

import (
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/kilnhq/kiln/cli/internal/mirror"
)

// mirrorCommand is the disaster-recovery copy: every command talks to the
// DR deployment (--nats), which reaches the primary through a leaf node.
func mirrorCommand(c *conn) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "mirror",
		Short: "Keep a disaster-recovery mirror of the stream, the id ledger and the schema registry in a second NATS deployment, and promote it",
		Long: `The DR deployment is a second nats-server with a JetStream domain of its own,
connected to the primary (which has a JetStream domain too) by a leaf node.
"kiln mirror create" makes EVENTS, KV_EVENT_IDS and KILN_SCHEMAS there mirrors
of the primary's; "kiln mirror status" shows how far behind they are; "kiln
mirror promote" turns them into Kiln's writable streams once the primary is
lost. Every command takes the DR deployment's URL (--nats). See
docs/operations.md, "Disaster recovery".`,
		Example: `  kiln mirror create --nats nats://dr-nats:4222 --primary-domain kiln-primary
  kiln mirror status --nats nats://dr-nats:4222
  kiln mirror promote --nats nats://dr-nats:4222`,
	}
	cmd.AddCommand(mirrorCreateCommand(c), mirrorStatusCommand(c), mirrorPromoteCommand(c))
	return cmd
}

func mirrorCreateCommand(c *conn) *cobra.Command {
	var o mirror.Options
	cmd := &cobra.Command{
		Use:   "create",
		Short: "Create the mirrors in the DR deployment (--nats), fed from the primary's JetStream domain",
		Long: `Create makes each of EVENTS, KV_EVENT_IDS and KILN_SCHEMAS in the DR deployment
a mirror of the stream of the same name in the primary's JetStream domain,
with the primary's limits. A mirror that exists already is left as it is;
a stream of that name that is not such a mirror is an error.`,
		Example: `  kiln mirror create --nats nats://dr-nats:4222 --primary-domain kiln-primary
  kiln mirror create --nats nats://dr-nats:4222 --primary-domain kiln-primary --replicas 3`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			js, err := c.jetStream()
			if err != nil {
				return err
			}
			o.Log = c.progressLog()
			created, err := mirror.Create(cmd.Context(), js.Conn(), o)
			w := tabwriter.NewWriter(c.io.Out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "stream\trole\tmirror\tprimary last seq")
			for _, m := range created {
				state := "created"
				switch {
				case m.Skipped:
					state = "skipped: not in the primary"
				case m.Existed:
					state = "exists"
				}
				fmt.Fprintf(w, "%s\t%s\t%s\t%d\n", m.Stream, m.Role, state, m.PrimaryLastSeq)
			}
			if ferr := w.Flush(); err == nil {
				err = ferr
			}
			return err
		},
	}
	cmd.Flags().StringVar(&o.PrimaryDomain, "primary-domain", "", "the primary's JetStream domain (required)")
	cmd.Flags().IntVar(&o.Replicas, "replicas", 0, "replicas of each mirror (default: the primary stream's)")
	_ = cmd.MarkFlagRequired("primary-domain")
	return cmd
}

func mirrorStatusCommand(c *conn) *cobra.Command {
	return &cobra.Command{
		Use:     "status",
		Short:   "Show each mirror's last sequence and how far behind the primary it knows it is",
		Example: `  kiln mirror status --nats nats://dr-nats:4222`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			js, err := c.jetStream()
			if err != nil {
				return err
			}
			states, err := mirror.Status(cmd.Context(), js.Conn())
			if err != nil {
				return err
			}
			w := tabwriter.NewWriter(c.io.Out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "stream\trole\tmirror of\tmessages\tlast seq\tlast message\tlag\tlast contact")
			for _, s := range states {
				of, contact := "promoted (writable)", "-"
				if s.Mirror {
					of = "domain " + s.Domain
					if s.Active >= 0 {
						contact = s.Active.Round(time.Millisecond).String() + " ago"
					} else {
						contact = "never"
					}
				}
				fmt.Fprintf(w, "%s\t%s\t%s\t%d\t%d\t%s\t%d\t%s\n", s.Stream, s.Role, of, s.Messages, s.LastSeq,
					s.LastTime.UTC().Format(time.RFC3339Nano), s.Lag, contact)
			}
			return w.Flush()
		},
	}
}

func mirrorPromoteCommand(c *conn) *cobra.Command {
	var o mirror.PromoteOptions
	cmd := &cobra.Command{
		Use:   "promote",
		Short: "Turn the DR deployment's mirrors into Kiln's writable streams, after the primary is lost",
		Long: `Promote removes the mirror from each stream's configuration (nats-server 2.12 or
later), gives it Kiln's subjects, and settles the id ledger against the
promoted EVENTS: an id whose event was mirrored answers duplicate, one whose
event was not can be posted again. It refuses while the primary's JetStream
still answers through the leaf node, unless --force. Then point every role's
NATS_URL at the DR deployment and start them: the projector brings MongoDB and
Redis up to the promoted stream (docs/operations.md, "Disaster recovery").`,
		Example: `  kiln mirror promote --nats nats://dr-nats:4222
  kiln mirror promote --nats nats://dr-nats:4222 --force`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			js, err := c.jetStream()
			if err != nil {
				return err
			}
			o.Log = c.progressLog()
			p, err := mirror.Promote(cmd.Context(), js.Conn(), o)
			if err != nil {
				return err
			}
			w := tabwriter.NewWriter(c.io.Out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "stream\tmessages\tlast seq\tlast message\tlag at its last contact")
			for _, s := range p.Streams {
				fmt.Fprintf(w, "%s\t%d\t%d\t%s\t%d\n", s.Stream, s.Messages, s.LastSeq, s.LastTime.UTC().Format(time.RFC3339Nano), s.Lag)
			}
			l := p.Ledger
			fmt.Fprintf(w, "id ledger: %d ids, %d pending settled, %d pending without event removed, %d past the stream removed, %d added for mirrored events\n",
				l.Entries, l.Settled, l.DroppedPending, l.DroppedLater, l.Added)
			fmt.Fprintf(w, "promoted in %s; now set NATS_URL of every role to this deployment and start them\n", p.Took.Round(time.Millisecond))
			return w.Flush()
		},
	}
	cmd.Flags().BoolVar(&o.Force, "force", false, "promote even while the primary's JetStream answers (two writable copies: they diverge)")
	return cmd
}
