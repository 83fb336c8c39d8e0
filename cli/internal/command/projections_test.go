package command

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/kilnhq/kiln/projector/status"
)

func TestStatusNoteNamesAStalledStore(t *testing.T) {
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	reports := []status.Report{
		{Projection: "history", Process: "a", Dependency: "mongodb"},
		{Projection: "history", Process: "b", Dependency: "mongodb"},
		{Projection: "counters", Process: "a", Dependency: "redis", Stalled: true,
			Since: now.Add(-90 * time.Second), Failures: 12, LastError: "connection refused"},
	}
	require.Equal(t, "ok (2 processes)", statusNote(reports, "history", now))
	require.Equal(t, "stalled 1m30s: waits for redis (12 attempts): connection refused", statusNote(reports, "counters", now))
	require.Equal(t, "-", statusNote(reports, "recent", now))
}
