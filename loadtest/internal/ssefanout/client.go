package ssefanout

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kilnhq/kiln/loadtest/internal/stats"
)

// client is one GET /stream connection.
type client struct {
	query string
	wide  bool // takes the whole stream: checks the ids for gaps
	win   *window

	body   io.ReadCloser
	r      *bufio.Reader
	cancel context.CancelFunc
	closed atomic.Bool
	frames atomic.Int64 // event frames received, measured or not

	mu       sync.Mutex
	samples  *stats.Samples // POST→frame latency of measured frames
	stored   *stats.Samples // receivedAt→frame latency of measured frames
	measured int64          // event frames of events sent in the window
	missed   int64          // ids skipped (wide clients)
	ended    bool           // the stream ended before close
}

// connect opens the stream and reads up to the connected frame.
func (c *client) connect(ctx context.Context, hc *http.Client, o Options) error {
	cctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	base := o.StreamURL
	if base == "" {
		base = o.URL
	}
	req, err := http.NewRequestWithContext(cctx, http.MethodGet, base+"/stream?"+c.query, nil)
	if err != nil {
		cancel()
		return err
	}
	if o.APIKey != "" {
		req.Header.Set("Authorization", "Bearer "+o.APIKey)
	}
	resp, err := hc.Do(req)
	if err != nil {
		cancel()
		return fmt.Errorf("GET /stream: %w", err)
	}
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 300))
		_ = resp.Body.Close()
		cancel()
		return fmt.Errorf("%w: %d %s", errNotStream, resp.StatusCode, b)
	}
	size := 4 << 10
	if c.wide {
		size = 64 << 10
	}
	c.body, c.r, c.cancel = resp.Body, bufio.NewReaderSize(resp.Body, size), cancel
	c.samples, c.stored = stats.NewSamples(0), stats.NewSamples(0)
	timer := time.AfterFunc(o.Timeout, cancel)
	defer timer.Stop()
	for {
		line, err := c.r.ReadSlice('\n')
		if err != nil {
			c.close()
			return fmt.Errorf("GET /stream: no connected frame: %w", err)
		}
		if bytes.Contains(line, []byte(`"connected":true`)) {
			return nil
		}
	}
}

// read consumes frames until the stream ends or close.
func (c *client) read() {
	var lastID uint64
	var event []byte
	sentAtKey, receivedAtKey := []byte(`"sentAt":`), []byte(`"receivedAt":`)
	for {
		line, err := c.r.ReadSlice('\n')
		if err == bufio.ErrBufferFull { // a longer line than the buffer: not ours
			for err == bufio.ErrBufferFull {
				_, err = c.r.ReadSlice('\n')
			}
			continue
		}
		if err != nil {
			if !c.closed.Load() {
				c.mu.Lock()
				c.ended = true
				c.mu.Unlock()
			}
			return
		}
		line = trimEOL(line)
		switch {
		case len(line) == 0:
			event = event[:0]
		case hasPrefix(line, "id: "):
			id, err := strconv.ParseUint(string(line[4:]), 10, 64)
			if err == nil && c.wide {
				if lastID != 0 && id > lastID+1 {
					c.mu.Lock()
					c.missed += int64(id - lastID - 1)
					c.mu.Unlock()
				}
				lastID = id
			}
		case hasPrefix(line, "event: "):
			event = append(event[:0], line[7:]...)
			if string(event) == "error" {
				c.mu.Lock()
				c.ended = true
				c.mu.Unlock()
			}
		case hasPrefix(line, "data: ") && string(event) == "message":
			now := time.Now().UnixNano()
			c.frames.Add(1)
			i := bytes.Index(line, sentAtKey)
			if i < 0 {
				continue
			}
			sentAt := parseInt(line[i+len(sentAtKey):])
			if c.win.contains(sentAt) {
				var received int64 // ms, stamped by ingest
				if j := bytes.Index(line, receivedAtKey); j >= 0 {
					received = parseInt(line[j+len(receivedAtKey):])
				}
				c.mu.Lock()
				c.measured++
				c.samples.Add(time.Duration(now - sentAt))
				if received > 0 {
					c.stored.Add(time.Duration(now - received*1e6))
				}
				c.mu.Unlock()
			}
		}
	}
}

// parseInt reads the decimal digits at the start of b.
func parseInt(b []byte) int64 {
	var n int64
	for _, ch := range b {
		if ch < '0' || ch > '9' {
			break
		}
		n = n*10 + int64(ch-'0')
	}
	return n
}

func (c *client) close() {
	if c.cancel == nil || c.closed.Swap(true) {
		return
	}
	c.cancel()
	_ = c.body.Close()
}
