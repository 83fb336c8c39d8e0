package command

import (
	"cmp"
	"fmt"
	"log/slog"
	"path/filepath"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/kilnhq/kiln/cli/internal/backup"
)

func backupCommand(c *conn) *cobra.Command {
	var stamp bool
	cmd := &cobra.Command{
		Use:   "backup DIR",
		Short: "Snapshot the EVENTS stream, the id ledger and the schema registry into DIR, while traffic flows",
		Long: `Backup takes JetStream snapshots of EVENTS, then of the id ledger (KV bucket
EVENT_IDS) and the schema registry (KILN_SCHEMAS), in that order, so that every
event in the backup has its id in it. DIR must not hold a backup; manifest.json
is written last. MongoDB and Redis are not in a backup: a restored deployment
rebuilds them from the stream (docs/operations.md, "Backup and restore").`,
		Example: `  kiln backup /var/backups/kiln/20261206
  kiln backup /var/backups/kiln --stamp`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			js, err := c.jetStream()
			if err != nil {
				return err
			}
			if stamp {
				args[0] = filepath.Join(args[0], time.Now().UTC().Format("20060102T150405Z"))
			}
			m, err := backup.Backup(cmd.Context(), js.Conn(), args[0], backup.Options{KilnVersion: c.io.Version, Log: c.progressLog()})
			if err != nil {
				return err
			}
			w := tabwriter.NewWriter(c.io.Out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "stream\trole\tmessages\tlast seq\tarchive bytes\ttook")
			for _, s := range m.Streams {
				fmt.Fprintf(w, "%s\t%s\t%d\t%d\t%d\t%s\n", s.Name, s.Role, s.Messages, s.LastSeq, s.ArchiveBytes, s.Took.Round(time.Millisecond))
			}
			fmt.Fprintf(w, "backup in %s, %s\n", args[0], m.Finished.Sub(m.Started).Round(time.Millisecond))
			return w.Flush()
		},
	}
	cmd.Flags().BoolVar(&stamp, "stamp", false, "write into a new folder of DIR named for the UTC time (e.g. 20261206T020000Z)")
	return cmd
}

func restoreCommand(c *conn) *cobra.Command {
	var (
		force   bool
		dataDir string
	)
	cmd := &cobra.Command{
		Use:   "restore DIR",
		Short: "Restore a backup taken by kiln backup into an empty deployment",
		Long: `Restore checks the backup against its manifest, restores each stream with
JetStream's restore API and settles the id ledger against the restored stream
(an id whose event is restored stays a duplicate; one whose event is not can be
posted again). It refuses when EVENTS or the id ledger holds messages, unless
--force, which deletes those streams first. A standalone is restored stopped,
with --data-dir (its embedded NATS is started for the restore); a split
deployment through --nats, with its roles stopped. Then start Kiln: the
projector rebuilds MongoDB and Redis from the restored stream by itself.`,
		Example: `  kiln restore /var/backups/kiln/20261206T020000Z --data-dir ./data
  kiln restore /var/backups/kiln/20261206T020000Z --nats nats://nats:4222 --force`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) (err error) {
			opts := backup.RestoreOptions{Force: force, Log: c.progressLog()}
			var r *backup.Restored
			if dataDir != "" {
				r, err = backup.RestoreDataDir(cmd.Context(), dataDir, args[0], opts)
			} else if js, jerr := c.jetStream(); jerr != nil {
				return fmt.Errorf("%w (to restore a stopped standalone, pass --data-dir)", jerr)
			} else {
				r, err = backup.Restore(cmd.Context(), js.Conn(), args[0], opts)
			}
			if err != nil {
				return err
			}
			w := tabwriter.NewWriter(c.io.Out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "stream\tmessages\tfirst seq\tlast seq\treplaced")
			for _, s := range r.Streams {
				replaced := "no stream"
				if s.Replaced {
					replaced = fmt.Sprintf("a stream of %d messages", s.ReplacedMessages)
				}
				fmt.Fprintf(w, "%s\t%d\t%d\t%d\t%s\n", s.Name, s.Messages, s.FirstSeq, s.LastSeq, replaced)
			}
			l := r.Ledger
			fmt.Fprintf(w, "id ledger: %d ids, %d pending settled, %d pending without event removed, %d after the backup point removed\n",
				l.Entries, l.Settled, l.DroppedPending, l.DroppedLater)
			fmt.Fprintf(w, "restored the backup of %s (kiln %s) in %s; now start Kiln (restart every role that ran): the projector rebuilds MongoDB and Redis from the stream\n",
				r.Manifest.Started.Format("2006-01-02T15:04:05Z"), cmp.Or(r.Manifest.KilnVersion, "unknown version"), r.Took.Round(time.Millisecond))
			return w.Flush()
		},
	}
	cmd.Flags().BoolVar(&force, "force", false, "delete streams that hold messages and replace them with the backup")
	cmd.Flags().StringVar(&dataDir, "data-dir", "", "restore into this standalone data folder while no kiln run uses it (instead of --nats)")
	return cmd
}

// progressLog logs at info to stderr: backup and restore report each
// stream as it is done.
func (c *conn) progressLog() *slog.Logger {
	return slog.New(slog.NewTextHandler(c.io.Err, &slog.HandlerOptions{Level: slog.LevelInfo}))
}
