package standalone

import (
	"context"
	"log/slog"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"golang.org/x/sync/errgroup"

	"github.com/kilnhq/kiln/ingest"
	"github.com/kilnhq/kiln/readmodel"
	"github.com/kilnhq/kiln/realtime/feed"
	"github.com/kilnhq/kiln/realtime/grpcapi"
	"github.com/kilnhq/kiln/realtime/socketio"
)

// newRealtime is the gRPC listener (GRPC_ADDR), the Socket.IO namespaces
// on the HTTP port (/socket.io/) and the realtime feed they share: orders,
// chat and events written through ingest's path and pushed from the stream.
func newRealtime(cfg Config, ing *ingest.Service, db *mongo.Database, js jetstream.JetStream,
	reg prometheus.Registerer, log *slog.Logger) (component, error) {
	log = log.With("service", "grpc")
	f := feed.New(js, log)
	srv, err := grpcapi.New(cfg.GRPC, grpcapi.Deps{
		Ingest: ing, Orders: readmodel.NewOrders(db), JetStream: js, Feed: f,
		ReadKeys: cfg.Gateway.ReadKeys, IngestKeys: cfg.Ingest.APIKeys, Metrics: reg, Log: log,
	})
	if err != nil {
		return component{}, err
	}
	sio, err := socketio.New(cfg.SocketIO, socketio.Deps{
		Ingest: ing, Feed: f, ReadKeys: cfg.Gateway.ReadKeys, Log: log.With("component", "socket.io"),
	})
	if err != nil {
		return component{}, err
	}
	return component{
		ready:    func(context.Context) error { return nil },
		register: sio.Register,
		run: func(ctx context.Context) error {
			g, ctx := errgroup.WithContext(ctx)
			g.Go(func() error { return f.Run(ctx) })
			g.Go(func() error { return srv.ListenAndServe(ctx) })
			g.Go(func() error { return sio.Run(ctx) })
			return g.Wait()
		},
	}, nil
}
