package roles

import (
	"context"

	"golang.org/x/sync/errgroup"

	"github.com/kilnhq/kiln/app/runner"
	"github.com/kilnhq/kiln/httpserver"
	"github.com/kilnhq/kiln/httpserver/tokens"
	"github.com/kilnhq/kiln/ingest"
	"github.com/kilnhq/kiln/readmodel"
	"github.com/kilnhq/kiln/realtime/feed"
	"github.com/kilnhq/kiln/realtime/grpcapi"
	"github.com/kilnhq/kiln/realtime/socketio"
)

// RealtimeConfig is what the realtime part reads: its two servers and the
// keys they accept (read keys for subscribers, ingest keys for writers).
type RealtimeConfig struct {
	GRPC       grpcapi.Config
	SocketIO   socketio.Config
	ReadKeys   []string
	IngestKeys []string
	// PublishableKeys (KILN_PUBLISHABLE_KEYS) may write /chat messages of
	// their types from their origins; Tokens are the subscriber tokens'
	// settings (KILN_TOKEN_SECRETS, …), which read what they allow.
	PublishableKeys string
	Tokens          tokens.Config
	// Origins is the browser origin policy Socket.IO checks pages' Origin
	// against (KILN_ALLOWED_ORIGINS).
	Origins httpserver.Origins
}

// Realtime is the gRPC listener (GRPC_ADDR), the Socket.IO namespaces
// on the HTTP port (/socket.io/) and the realtime feed they share: orders,
// chat and events written through ingest's path and pushed from the stream.
func Realtime(cfg RealtimeConfig, ing *ingest.Service, d Deps) (runner.Part, error) {
	log := d.log("realtime")
	access, err := httpserver.NewAccess(cfg.IngestKeys, cfg.ReadKeys, cfg.PublishableKeys, cfg.Tokens)
	if err != nil {
		return runner.Part{}, err
	}
	f := feed.New(d.JetStream, log)
	srv, err := grpcapi.New(cfg.GRPC, grpcapi.Deps{
		Ingest: ing, Orders: readmodel.NewOrders(d.Mongo), JetStream: d.JetStream, Feed: f,
		Access: access, Metrics: d.Metrics, Log: log, Tracer: d.Tracer,
	})
	if err != nil {
		return runner.Part{}, err
	}
	sio, err := socketio.New(cfg.SocketIO, socketio.Deps{
		Ingest: ing, Feed: f, Access: access, Origins: cfg.Origins, Log: log.With("component", "socket.io"),
	})
	if err != nil {
		return runner.Part{}, err
	}
	return runner.Part{
		Name:     "realtime",
		Ready:    func(context.Context) error { return nil },
		Register: sio.Register,
		Run: func(ctx context.Context) error {
			g, ctx := errgroup.WithContext(ctx)
			g.Go(func() error { return f.Run(ctx) })
			g.Go(func() error { return srv.ListenAndServe(ctx) })
			g.Go(func() error { return sio.Run(ctx) })
			return g.Wait()
		},
	}, nil
}
