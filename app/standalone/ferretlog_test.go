package standalone

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// countingHandler counts the WithAttrs calls that reach it.
type countingHandler struct {
	slog.Handler
	withAttrs *int
}

func (h countingHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	*h.withAttrs++
	return countingHandler{Handler: h.Handler.WithAttrs(attrs), withAttrs: h.withAttrs}
}

func (h countingHandler) WithGroup(name string) slog.Handler {
	return countingHandler{Handler: h.Handler.WithGroup(name), withAttrs: h.withAttrs}
}

// FerretDB calls With(args) on every SQL statement; below the level the
// standalone writes, the attributes must not reach (be formatted by) the
// real handler, and above it they must be written as given.
func TestFerretLoggerFormatsOnlyWhatItWrites(t *testing.T) {
	var out bytes.Buffer
	n := 0
	base := slog.New(countingHandler{Handler: slog.NewTextHandler(&out, &slog.HandlerOptions{Level: slog.LevelInfo}), withAttrs: &n})
	log := ferretLogger(base)
	n = 0 // the component attribute, applied once

	for range 100 {
		log.With(slog.Any("args", []any{strings.Repeat("x", 1000)})).DebugContext(context.Background(), ">>> INSERT")
	}
	require.Zero(t, n, "attributes of records below the level reach the handler")
	require.Empty(t, out.String())

	log.With("args", "a1").WithGroup("g").With("k", "v").Error("failed", "err", "boom")
	line := out.String()
	for _, want := range []string{"component=ferretdb", "args=a1", "g.k=v", "g.err=boom", "msg=failed"} {
		require.Contains(t, line, want)
	}
}
