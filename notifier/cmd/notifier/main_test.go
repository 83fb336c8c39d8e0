package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/kilnhq/kiln/notifier/internal/jobs"
	"github.com/kilnhq/kiln/readmodel"
	"github.com/kilnhq/kiln/testsupport"
)

func TestRulesCheck(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	var out bytes.Buffer
	require.NoError(t, run(ctx, []string{"rules", "check"}, nil, &out, &out))
	require.Equal(t, "3 rules ok: payment-failed-burst, big-order, order-canceled-fraud\n", out.String())

	bad := filepath.Join(t.TempDir(), "rules.yaml")
	require.NoError(t, os.WriteFile(bad, []byte("rules:\n  - {name: loud, match: {type: x}, channels: [pager]}\n"), 0o600))
	err := run(ctx, []string{"rules", "check"}, []string{"NOTIFIER_RULES_FILE=" + bad}, &out, &out)
	require.ErrorContains(t, err, `rule "loud" (rules[0], line 2): channels[0]: channel "pager" is not configured`)

	// The service refuses to start on the same file, before connecting anywhere.
	err = run(ctx, nil, []string{"NOTIFIER_RULES_FILE=" + bad, "NATS_URL=nats://127.0.0.1:1"}, &out, &out)
	require.ErrorContains(t, err, `rule "loud"`)

	require.ErrorContains(t, run(ctx, []string{"frobnicate"}, nil, &out, &out), "usage:")
}

func TestDLQListAndRedrive(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	ns := testsupport.StartNATS(t)
	js := ns.JetStream(t)
	env := []string{"NATS_URL=" + ns.URL()}
	var out bytes.Buffer
	require.NoError(t, run(ctx, []string{"dlq", "list"}, env, &out, &out))
	require.Equal(t, "no dead letters\n", out.String(), "no stream yet")

	require.NoError(t, jobs.EnsureStreams(ctx, js, 1))
	for _, id := range []string{"a1", "a2"} {
		job := jobs.Job{Alert: readmodel.Alert{ID: id, Rule: "big-order", Channels: []string{"slack"}}, Channel: "slack"}
		require.NoError(t, jobs.PublishDead(ctx, js, jobs.DeadLetter{Job: job, Error: "slack webhook answered 500", Attempts: 5, FailedAt: 1}, 7))
	}
	out.Reset()
	require.NoError(t, run(ctx, []string{"dlq", "list"}, env, &out, &out))
	require.Contains(t, out.String(), "SEQ  DELIVERY  RULE       ATTEMPTS  FAILED AT             ERROR")
	require.Contains(t, out.String(), "1    a1:slack  big-order  5         1970-01-01T00:00:00Z  slack webhook answered 500")

	out.Reset()
	require.NoError(t, run(ctx, []string{"dlq", "list", "-json"}, env, &out, &out))
	var letters []jobs.DeadLetter
	require.NoError(t, json.Unmarshal(out.Bytes(), &letters))
	require.Len(t, letters, 2)

	out.Reset()
	require.ErrorContains(t, run(ctx, []string{"dlq", "redrive"}, env, &out, &out), "give -all or delivery ids")
	require.NoError(t, run(ctx, []string{"dlq", "redrive", "a2:slack"}, env, &out, &out))
	require.Equal(t, "redriven a2:slack (dead letter 2)\n1 redriven\n", out.String())
	out.Reset()
	require.NoError(t, run(ctx, []string{"dlq", "redrive", "-all"}, env, &out, &out))
	require.Equal(t, "redriven a1:slack (dead letter 1)\n1 redriven\n", out.String())
	out.Reset()
	require.NoError(t, run(ctx, []string{"dlq", "list"}, env, &out, &out))
	require.Equal(t, "no dead letters\n", out.String())

	stream, err := js.Stream(ctx, jobs.Stream)
	require.NoError(t, err)
	info, err := stream.Info(ctx)
	require.NoError(t, err)
	require.EqualValues(t, 2, info.State.Msgs, "both jobs queued again")
}
