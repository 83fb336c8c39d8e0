package command

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/kilnhq/kiln/cli/internal/progress"
	"github.com/kilnhq/kiln/projector/replay"
)

func replayCommand(c *conn) *cobra.Command {
	var (
		opts     replay.Options
		fromTime string
		yes      bool
	)
	cmd := &cobra.Command{
		Use:   "replay <history|counters|all>",
		Short: "Rebuild read models from the stream into a shadow generation, then switch atomically",
		Long: `Replay reads the EVENTS stream with an ordered consumer into a new generation of
the read model while the live projector keeps serving, switches readers and the
live projector to it once it has caught up with the stream, and drops the old
generation after --grace. It never publishes, so no alert or webhook fires.
Ctrl-C leaves a resumable state: run again with --resume.`,
		Example: `  kiln replay counters
  kiln replay all --yes
  kiln replay history --resume`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			switch args[0] {
			case "all":
				opts.Projections = replay.Projections()
			default:
				opts.Projections = []string{args[0]}
			}
			if fromTime != "" {
				t, err := time.Parse(time.RFC3339, fromTime)
				if err != nil {
					return fmt.Errorf("--from-time: want RFC 3339 (e.g. 2026-11-23T10:00:00Z): %w", err)
				}
				opts.FromTime = t
			}
			return runReplay(cmd, c, opts, yes)
		},
	}
	f := cmd.Flags()
	f.Uint64Var(&opts.FromSeq, "from-seq", 0, "start at this stream sequence (older events are left out of the rebuilt model)")
	f.StringVar(&fromTime, "from-time", "", "start at the first event stored at or after this RFC 3339 time")
	f.BoolVar(&opts.DryRun, "dry-run", false, "print the plan and change nothing")
	f.BoolVar(&opts.Resume, "resume", false, "continue an interrupted replay")
	f.BoolVarP(&yes, "yes", "y", false, "do not ask for confirmation")
	f.DurationVar(&opts.Grace, "grace", 30*time.Second, "keep the old generation this long after the switch")
	f.IntVar(&opts.BatchSize, "batch", 1000, "events per write")
	f.DurationVar(&opts.MinuteRetention, "minute-retention", 24*time.Hour, "must match PROJECTOR_MINUTE_RETENTION")
	f.IntVar(&opts.RecentMaxEvents, "recent-max-events", 100_000, "must match PROJECTOR_RECENT_MAX_EVENTS")
	return cmd
}

// replayDeps opens what the projections are built from and kept in: NATS,
// MongoDB and Redis.
func (c *conn) replayDeps() (replay.Deps, error) {
	js, err := c.jetStream()
	if err != nil {
		return replay.Deps{}, err
	}
	db, err := c.mongo()
	if err != nil {
		return replay.Deps{}, err
	}
	rdb, err := c.redis()
	if err != nil {
		return replay.Deps{}, err
	}
	return replay.Deps{JetStream: js, Mongo: db, Redis: rdb, Log: c.log()}, nil
}

func runReplay(cmd *cobra.Command, c *conn, opts replay.Options, yes bool) error {
	ctx := cmd.Context()
	deps, err := c.replayDeps()
	if err != nil {
		return err
	}
	planOpts := opts
	planOpts.DryRun = true
	plans, err := replay.Run(ctx, deps, planOpts)
	if err != nil {
		return err
	}
	var total uint64
	for _, p := range plans {
		if p.Skip != "" {
			fmt.Fprintf(c.io.Out, "%s: skipped, %s\n", p.Projection, p.Skip)
			continue
		}
		fmt.Fprintf(c.io.Out, "%s: generation %d → %d (%s), sequences %d..%d, about %d events%s\n",
			p.Projection, p.LiveGeneration, p.NewGeneration, p.Target, p.FromSeq, p.HeadSeq, p.Events, resumeNote(p.Resume))
		total += p.Events
	}
	if opts.DryRun {
		fmt.Fprintln(c.io.Out, "dry run: nothing changed")
		return nil
	}
	if !yes {
		if err := confirm(c); err != nil {
			return err
		}
	}
	rep := progress.New(c.io.Err, int64(total), isTerminal(c.io.Err))
	opts.OnProgress = rep.Update
	_, err = replay.Run(ctx, deps, opts)
	rep.Finish()
	if err != nil && ctx.Err() != nil {
		return fmt.Errorf("interrupted; run `kiln replay %s --resume` to continue", strings.Join(opts.Projections, ","))
	}
	if err != nil {
		return err
	}
	fmt.Fprintln(c.io.Out, "replay complete")
	return nil
}

func resumeNote(resume bool) string {
	if resume {
		return ", resuming"
	}
	return ""
}

// confirm asks on a terminal; elsewhere --yes is required.
func confirm(c *conn) error {
	f, ok := c.io.In.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return errors.New("not a terminal: pass --yes to replay without confirmation")
	}
	fmt.Fprint(c.io.Out, "Proceed? [y/N] ")
	line, _ := bufio.NewReader(c.io.In).ReadString('\n')
	if answer := strings.ToLower(strings.TrimSpace(line)); answer != "y" && answer != "yes" {
		return errors.New("aborted")
	}
	return nil
}

func isTerminal(w any) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}
