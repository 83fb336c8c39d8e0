// Command kiln-rtbench measures Kiln's realtime interfaces against a
// running standalone (loadtest/bench.sh starts one and runs it) and prints
// one JSON line per result, like kiln-load:
//
//	grpc_publish     events/s through kiln.v1.EventService/Publish in batches,
//	                 baseline: POST /events with the same batches, same run
//	socketio_fanout  /chat messages delivered per second to many clients
//	                 (a lean Go Socket.IO client, in this process), with
//	                 p50/p99 latency, the server's memory per client and
//	                 the CPU of the server and of the clients
//	realtime_flood   GET /healthz p99 while 20,000 Subscribe streams are held
//	                 and 2,000 /chat clients flood 1 MiB messages (not in
//	                 the default -only), baseline: /healthz before the
//	                 flood; with what was admitted, refused and stored, and
//	                 the server's RSS
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "kiln-rtbench:", err)
		os.Exit(1)
	}
}

type options struct {
	url, grpcAddr, key, token, only string
	duration, sioDuration           time.Duration
	concurrency, batch              int
	sioClients, sioRate, pid        int

	floodStreams, floodClients, floodBytes int
	floodDuration                          time.Duration
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("kiln-rtbench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o options
	fs.StringVar(&o.url, "url", "http://127.0.0.1:8080", "standalone HTTP base URL")
	fs.StringVar(&o.grpcAddr, "grpc", "127.0.0.1:9090", "standalone gRPC address")
	fs.StringVar(&o.key, "key", "", "ingest API key, if any")
	fs.StringVar(&o.token, "token", "", "Socket.IO token (WS_TOKEN), if any")
	fs.StringVar(&o.only, "only", "grpc_publish,socketio_fanout", "benches to run, comma-separated")
	fs.DurationVar(&o.duration, "duration", 10*time.Second, "grpc_publish: length of each phase (HTTP, then gRPC)")
	fs.IntVar(&o.concurrency, "concurrency", 8, "grpc_publish: concurrent publishers")
	fs.IntVar(&o.batch, "batch", 100, "grpc_publish: events per request")
	fs.IntVar(&o.sioClients, "sio-clients", 2000, "socketio_fanout: connected /chat clients")
	fs.IntVar(&o.sioRate, "sio-rate", 1000, "socketio_fanout: messages per second sent")
	fs.DurationVar(&o.sioDuration, "sio-duration", 10*time.Second, "socketio_fanout: sending time")
	fs.IntVar(&o.pid, "pid", 0, "socketio_fanout: pid of the server whose RSS is measured (0: not measured)")
	fs.IntVar(&o.floodStreams, "flood-streams", 20000, "realtime_flood: gRPC Subscribe streams opened")
	fs.IntVar(&o.floodClients, "flood-clients", 2000, "realtime_flood: /chat clients flooding")
	fs.IntVar(&o.floodBytes, "flood-bytes", 1<<20, "realtime_flood: size of each flood message")
	fs.DurationVar(&o.floodDuration, "flood-duration", 30*time.Second, "realtime_flood: length of the flood")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if o.sioClients < 1 || o.sioRate < 1 {
		return fmt.Errorf("-sio-clients and -sio-rate must be at least 1")
	}
	for _, b := range strings.Split(o.only, ",") {
		var err error
		switch strings.TrimSpace(b) {
		case "grpc_publish":
			err = benchPublish(ctx, o, stdout, stderr)
		case "socketio_fanout":
			err = benchFanout(ctx, o, stdout, stderr)
		case "realtime_flood":
			err = benchFlood(ctx, o, stdout, stderr)
		case "healthz_probe": // realtime_flood's prober, in a process of its own
			err = benchHealthzProbe(ctx, o, stdout)
		case "":
		default:
			err = fmt.Errorf("unknown bench %q", b)
		}
		if err != nil {
			return err
		}
	}
	return nil
}
