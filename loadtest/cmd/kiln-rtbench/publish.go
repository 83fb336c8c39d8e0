package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"

	kilnv1 "github.com/kilnhq/kiln/realtime/gen/kiln/v1"
)

// line is one result line: the common shape plus the bench's own fields.
type line map[string]any

// commonKeys lead every line, in this order (as kiln-load prints them);
// the bench's own fields follow, sorted.
var commonKeys = []string{"bench", "value", "unit", "baseline", "ratio"}

func emit(w io.Writer, l line) error {
	var b bytes.Buffer
	b.WriteByte('{')
	write := func(k string) error {
		v, err := json.Marshal(l[k])
		if err != nil {
			return err
		}
		if b.Len() > 1 {
			b.WriteByte(',')
		}
		kb, _ := json.Marshal(k)
		b.Write(kb)
		b.WriteByte(':')
		b.Write(v)
		return nil
	}
	for _, k := range commonKeys {
		if err := write(k); err != nil {
			return err
		}
	}
	rest := make([]string, 0, len(l))
	for k := range l {
		if !slices.Contains(commonKeys, k) {
			rest = append(rest, k)
		}
	}
	slices.Sort(rest)
	for _, k := range rest {
		if err := write(k); err != nil {
			return err
		}
	}
	b.WriteString("}\n")
	_, err := w.Write(b.Bytes())
	return err
}

// benchPublish runs HTTP and gRPC batches for o.duration each, in two slots.
func benchPublish(ctx context.Context, o options, stdout, stderr io.Writer) error {
	cc, err := grpc.NewClient(o.grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return err
	}
	defer cc.Close()
	client := kilnv1.NewEventServiceClient(cc)
	gctx := ctx
	if o.key != "" {
		gctx = metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+o.key)
	}
	run := time.Now().UnixNano()
	httpClient := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: o.concurrency}, Timeout: 30 * time.Second}
	httpDo := func(worker, n int) (int, error) {
		body, _ := json.Marshal(batchJSON(fmt.Sprintf("h%d-%d-%d", run, worker, n), o.batch))
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, o.url+"/events", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		if o.key != "" {
			req.Header.Set("Authorization", "Bearer "+o.key)
		}
		resp, err := httpClient.Do(req)
		if err != nil {
			return 0, err
		}
		defer resp.Body.Close()
		var out struct {
			Accepted int `json:"accepted"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode != http.StatusAccepted {
			return out.Accepted, fmt.Errorf("POST /events: %d %v", resp.StatusCode, err)
		}
		return out.Accepted, nil
	}
	grpcDo := func(worker, n int) (int, error) {
		resp, err := client.Publish(gctx, &kilnv1.PublishRequest{Events: batchProto(fmt.Sprintf("g%d-%d-%d", run, worker, n), o.batch)})
		if err != nil {
			return 0, err
		}
		return int(resp.GetAccepted()), nil
	}
	// HTTP, gRPC, gRPC, HTTP (each half the duration): the in-process
	// projection of one phase's events runs into the next, so each side
	// gets a slot after the other.
	half := o
	half.duration = o.duration / 2
	var httpRate, grpcRate float64
	var httpErrs, grpcErrs int64
	for i, do := range []func(int, int) (int, error){httpDo, grpcDo, grpcDo, httpDo} {
		rate, errs := phase(ctx, half, do)
		if i == 0 || i == 3 {
			httpRate, httpErrs = httpRate+rate/2, httpErrs+errs
		} else {
			grpcRate, grpcErrs = grpcRate+rate/2, grpcErrs+errs
		}
		fmt.Fprintf(stderr, "kiln-rtbench: slot %d (%s) %.0f events/s (%d errors)\n", i, []string{"HTTP", "gRPC", "gRPC", "HTTP"}[i], rate, errs)
	}
	return emit(stdout, line{"bench": "grpc_publish", "value": round1(grpcRate), "unit": "events/s",
		"baseline": round1(httpRate), "ratio": round3(grpcRate / httpRate), "target_ratio": 0.8,
		"batch": o.batch, "concurrency": o.concurrency, "errors": grpcErrs, "baseline_errors": httpErrs,
		"baseline_is": "POST /events, same batches, same run"})
}

// phase runs o.concurrency workers for o.duration and returns accepted events/s.
func phase(ctx context.Context, o options, do func(worker, n int) (int, error)) (float64, int64) {
	ctx, cancel := context.WithTimeout(ctx, o.duration)
	defer cancel()
	var accepted, errs atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for w := range o.concurrency {
		wg.Go(func() {
			for n := 0; ctx.Err() == nil; n++ {
				got, err := do(w, n)
				accepted.Add(int64(got))
				if err != nil && ctx.Err() == nil {
					errs.Add(1)
				}
			}
		})
	}
	wg.Wait()
	return float64(accepted.Load()) / time.Since(start).Seconds(), errs.Load()
}

type httpEvent struct {
	ID        string         `json:"id"`
	EventType string         `json:"eventType"`
	UserID    string         `json:"userId"`
	Timestamp int64          `json:"timestamp"`
	Metadata  map[string]any `json:"metadata"`
}

func batchJSON(prefix string, n int) []httpEvent {
	out := make([]httpEvent, n)
	now := time.Now().UnixMilli()
	for i := range out {
		out[i] = httpEvent{ID: fmt.Sprintf("%s-%d", prefix, i), EventType: "bench.publish", UserID: fmt.Sprint("u", i%50),
			Timestamp: now, Metadata: map[string]any{"n": i, "path": "/bench"}}
	}
	return out
}

func batchProto(prefix string, n int) []*kilnv1.Event {
	out := make([]*kilnv1.Event, n)
	now := float64(time.Now().UnixMilli())
	for i := range out {
		out[i] = &kilnv1.Event{Id: fmt.Sprintf("%s-%d", prefix, i), EventType: "bench.publish", UserId: fmt.Sprint("u", i%50),
			Timestamp: now, MetadataJson: fmt.Sprintf(`{"n":%d,"path":"/bench"}`, i)}
	}
	return out
}

func round1(v float64) float64 { return float64(int64(v*10+0.5)) / 10 }
func round3(v float64) float64 { return float64(int64(v*1000+0.5)) / 1000 }
