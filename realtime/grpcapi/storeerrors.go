package grpcapi

import (
	"context"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// storeError is the status a client gets when a store (Mongo, NATS) fails:
// code with a message in Kiln's words. The store's error, which may name
// internal addresses or URIs, is only logged.
func (s *Server) storeError(ctx context.Context, code codes.Code, what string, err error) error {
	s.deps.Log.WarnContext(ctx, "grpc store error", "component", "grpc", "store", what, "err", err)
	return status.Errorf(code, "%s is unavailable; retry later", what)
}
