package delivery

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// maxWriteBatch bounds the records committed together; maxUpserts the
// upserts in one BulkWrite, as FerretDB holds a connection per matching
// upsert until the command ends (pool of 100). Inserts have no such cost.
const (
	maxWriteBatch = 512
	maxUpserts    = 50
	writers       = 2 // bulk writes in flight
)

// writer records attempts in the log in small unordered bulk writes: the
// workers' concurrent records are committed together, and each worker
// waits for its own to be durable before it acks the job.
type writer struct {
	log  *Log
	reqs chan writeReq
}

type writeReq struct {
	e    entry
	done chan error
}

func newWriter(log *Log, queue int) *writer {
	return &writer{log: log, reqs: make(chan writeReq, queue)}
}

// write records e and returns once it is stored (or failed).
func (w *writer) write(ctx context.Context, e entry) error {
	done := make(chan error, 1)
	select {
	case w.reqs <- writeReq{e: e, done: done}:
	case <-ctx.Done():
		return ctx.Err()
	}
	return <-done // the writer answers every request it took
}

// submit queues e without waiting for it to be stored; it blocks only
// while the queue is full. For outcomes whose record is not needed to
// handle the job correctly (a success: the effect is the delivery itself).
func (w *writer) submit(e entry) {
	w.reqs <- writeReq{e: e, done: make(chan error, 1)}
}

// run writes until ctx is done, with writers goroutines.
func (w *writer) run(ctx context.Context) {
	var wg sync.WaitGroup
	for range writers {
		wg.Go(func() { w.loop(ctx) })
	}
	wg.Wait()
}

func (w *writer) loop(ctx context.Context) {
	batch := make([]writeReq, 0, maxWriteBatch)
	for {
		var first writeReq
		select {
		case first = <-w.reqs:
		case <-ctx.Done():
			w.drain(batch)
			return
		}
		batch = append(batch[:0], first)
	fill:
		for len(batch) < maxWriteBatch {
			select {
			case r := <-w.reqs:
				batch = append(batch, r)
			default:
				break fill
			}
		}
		w.flush(batch)
	}
}

// drain writes what is still queued once the workers have stopped.
func (w *writer) drain(batch []writeReq) {
	for {
		batch = batch[:0]
	fill:
		for len(batch) < maxWriteBatch {
			select {
			case r := <-w.reqs:
				batch = append(batch, r)
			default:
				break fill
			}
		}
		if len(batch) == 0 {
			return
		}
		w.flush(batch)
	}
}

// flush writes a batch: its inserts in one BulkWrite, its upserts in
// BulkWrites of at most maxUpserts.
func (w *writer) flush(batch []writeReq) {
	var inserts, upserts []writeReq
	for _, r := range batch {
		if r.e.first && r.e.status == StatusSucceeded {
			inserts = append(inserts, r)
		} else {
			upserts = append(upserts, r)
		}
	}
	if len(inserts) > 0 {
		w.bulk(inserts)
	}
	for len(upserts) > 0 {
		n := min(len(upserts), maxUpserts)
		w.bulk(upserts[:n])
		upserts = upserts[n:]
	}
}

func (w *writer) bulk(batch []writeReq) {
	now := time.Now().UnixMilli()
	models := make([]mongo.WriteModel, len(batch))
	for i := range batch {
		models[i] = batch[i].e.model(now)
	}
	ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
	defer cancel()
	_, err := w.log.coll.BulkWrite(ctx, models, options.BulkWrite().SetOrdered(false))
	errs := make([]error, len(batch))
	var bwe mongo.BulkWriteException
	switch {
	case err == nil:
	case errors.As(err, &bwe) && bwe.WriteConcernError == nil:
		for _, we := range bwe.WriteErrors {
			if we.Index < 0 || we.Index >= len(batch) {
				continue
			}
			if mongo.IsDuplicateKeyError(we) {
				// A redelivered first attempt: record it as a further one.
				e := batch[we.Index].e
				e.first = false
				_, uerr := w.log.coll.BulkWrite(ctx, []mongo.WriteModel{e.model(now)})
				errs[we.Index] = uerr
				continue
			}
			errs[we.Index] = fmt.Errorf("record delivery %s: %s", batch[we.Index].e.job.WebhookID, we.Message)
		}
	default:
		for i := range errs {
			errs[i] = fmt.Errorf("record deliveries: %w", err)
		}
	}
	for i, r := range batch {
		r.done <- errs[i]
	}
}
