package ssefanout

import (
	"context"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kilnhq/kiln/loadtest/internal/eventpost"
)

// Posting: every tick one JSON array of the tick's events is handed to a
// pool of posters, so a slow answer does not delay the schedule (open
// loop). Each event's metadata carries its send time.
const (
	tick    = 10 * time.Millisecond
	posters = 16
)

// loadResult counts the measured window's stored events.
type loadResult struct {
	stored, narrowStored, errors int64
}

type batch struct {
	body      []byte
	n, narrow int
	measured  bool
}

// postLoad posts at o.Rate until the window ends.
func postLoad(ctx context.Context, post *eventpost.Client, o Options, w *window) loadResult {
	var res loadResult
	var stored, narrowStored, errs atomic.Int64
	queue := make(chan batch, 1024)
	var wg sync.WaitGroup
	for range posters {
		wg.Go(func() {
			for b := range queue {
				n, err := post.PostBatch(b.body, b.n)
				if err != nil {
					errs.Add(1)
				}
				if b.measured {
					stored.Add(int64(n))
					if n == b.n {
						narrowStored.Add(int64(b.narrow))
					}
				}
			}
		})
	}
	// What is owed follows the clock, so late ticks are made up for.
	var sent, narrowSent int64
	next := 0 // the next narrow type
	begin, end := time.Now(), time.Unix(0, w.to.Load())
	t := time.NewTicker(tick)
	defer t.Stop()
	body := make([]byte, 0, 64<<10)
	for now := time.Now(); now.Before(end); now = time.Now() {
		elapsed := now.Sub(begin).Seconds()
		n := int(int64(o.Rate*elapsed) - sent)
		narrow := min(int(int64(float64(o.Narrow)*elapsed)-narrowSent), n)
		sent += int64(n)
		narrowSent += int64(narrow)
		if n > 0 {
			sentAt := time.Now().UnixNano()
			body = body[:0]
			body = append(body, '[')
			for i := range n {
				typ := bulkType
				if i < narrow {
					typ = narrowType(next)
					next = (next + 1) % o.Narrow
				}
				if i > 0 {
					body = append(body, ',')
				}
				body = append(body, `{"eventType":"`...)
				body = append(body, typ...)
				body = append(body, `","userId":"ssebench","timestamp":`...)
				body = strconv.AppendInt(body, sentAt/1e6, 10)
				body = append(body, `,"metadata":{"sentAt":`...)
				body = strconv.AppendInt(body, sentAt, 10)
				body = append(body, `}}`...)
			}
			body = append(body, ']')
			b := batch{body: append([]byte(nil), body...), n: n, narrow: narrow, measured: w.contains(sentAt)}
			select {
			case queue <- b:
			default: // the posters are this far behind: count it as failed
				errs.Add(1)
			}
		}
		select {
		case <-ctx.Done():
			close(queue)
			wg.Wait()
			return res
		case <-t.C:
		}
	}
	close(queue)
	wg.Wait()
	res.stored, res.narrowStored, res.errors = stored.Load(), narrowStored.Load(), errs.Load()
	return res
}
