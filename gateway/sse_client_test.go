package gateway_test

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// frame is one parsed SSE frame; a comment line (": ping") is a frame
// with only comment set.
type frame struct {
	id, event, data, comment string
}

// isSnapshot reports whether f is a compat snapshot frame: unnamed,
// without id, its data {"timestamp":…,"total":…,"recent":[…]}.
func (f frame) isSnapshot() bool {
	return f.id == "" && f.event == "" && f.comment == "" && strings.HasPrefix(f.data, `{"timestamp":`)
}

// seq is an event frame's id.
func (f frame) seq(t *testing.T) uint64 {
	t.Helper()
	n, err := strconv.ParseUint(f.id, 10, 64)
	require.NoError(t, err, "frame id %q", f.id)
	return n
}

// sseClient reads a text/event-stream in the background, handing over one
// frame at a time: while the test does not ask for frames the client stops
// reading from the connection, as a stalled browser would.
type sseClient struct {
	frames chan frame // closed at the end of the stream
	cancel context.CancelFunc
	// snapshots keeps the compat snapshot frames ({timestamp,total,
	// recent}); the other tests' clients skip them.
	snapshots bool
}

// frameWait bounds how long a test waits for one frame.
const frameWait = 15 * time.Second

// openStream requests url (headers as name, value pairs) and checks it is
// an event stream.
func openStream(t *testing.T, url string, headers ...string) *sseClient {
	t.Helper()
	return openStreamKeeping(t, false, url, headers...)
}

// openStreamKeeping is openStream, with the compat snapshot frames kept
// when snapshots is set.
func openStreamKeeping(t *testing.T, snapshots bool, url string, headers ...string) *sseClient {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	require.NoError(t, err)
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		cancel()
		t.Fatalf("GET %s: %d %s", url, resp.StatusCode, b)
	}
	require.Equal(t, "text/event-stream", resp.Header.Get("Content-Type"))
	c := &sseClient{frames: make(chan frame), cancel: cancel, snapshots: snapshots}
	go c.read(ctx, resp.Body)
	t.Cleanup(c.close)
	return c
}

func (c *sseClient) read(ctx context.Context, body io.ReadCloser) {
	defer close(c.frames)
	defer body.Close()
	r := bufio.NewReader(body)
	var f frame
	var data []string
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		line = strings.TrimSuffix(line, "\n")
		name, value, _ := strings.Cut(line, ":")
		value = strings.TrimPrefix(value, " ")
		switch {
		case line == "":
			if len(data) == 0 && f.event == "" && f.id == "" {
				continue
			}
			f.data = strings.Join(data, "\n")
			if !c.snapshots && f.isSnapshot() {
				f, data = frame{}, nil
				continue
			}
		case name == "":
			f = frame{comment: value}
		case name == "id":
			f.id = value
			continue
		case name == "event":
			f.event = value
			continue
		case name == "data":
			data = append(data, value)
			continue
		default:
			continue
		}
		select {
		case c.frames <- f:
		case <-ctx.Done():
			return
		}
		f, data = frame{}, nil
	}
}

// next returns the next frame, heartbeats included; ok is false at the end
// of the stream.
func (c *sseClient) next(t *testing.T) (frame, bool) {
	t.Helper()
	select {
	case f, ok := <-c.frames:
		return f, ok
	case <-time.After(frameWait):
		t.Fatal("no frame within", frameWait)
		return frame{}, false
	}
}

// nextEvent returns the next event frame, skipping heartbeats and metrics.
func (c *sseClient) nextEvent(t *testing.T) frame {
	t.Helper()
	for {
		f, ok := c.next(t)
		require.True(t, ok, "the stream ended")
		if f.comment == "" && f.event != "metrics" {
			return f
		}
	}
}

// eventsUntil reads event frames until one with sequence last and returns
// their sequences.
func (c *sseClient) eventsUntil(t *testing.T, last uint64) []uint64 {
	t.Helper()
	var seqs []uint64
	for {
		f := c.nextEvent(t)
		require.Equal(t, "message", f.event, "frame %+v", f)
		seqs = append(seqs, f.seq(t))
		if seqs[len(seqs)-1] >= last {
			return seqs
		}
	}
}

// requireConnected reads the compat first frame.
func (c *sseClient) requireConnected(t *testing.T) {
	t.Helper()
	f := c.nextEvent(t)
	require.Equal(t, frame{data: `{"connected":true}`}, f)
}

func (c *sseClient) close() { c.cancel() }

// decodeData unmarshals a frame's data.
func decodeData(t *testing.T, f frame) map[string]any {
	t.Helper()
	var m map[string]any
	require.NoError(t, json.Unmarshal([]byte(f.data), &m), "data: %s", f.data)
	return m
}

// consecutive is from, from+1, …, to.
func consecutive(from, to uint64) []uint64 {
	var out []uint64
	for s := from; s <= to; s++ {
		out = append(out, s)
	}
	return out
}
