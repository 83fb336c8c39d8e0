package projector

import (
	"context"

	"github.com/kilnhq/kiln/projector/internal/consume"
	"github.com/kilnhq/kiln/readmodel"
	"github.com/kilnhq/kiln/schemas"
)

// Orders is the projection that builds the orders read model (served by
// the gRPC orders.OrderService) from the order.* events.
const Orders = "orders"

// ordersProjection writes the orders read model; it skips every event
// that is not an order.* event.
type ordersProjection struct{ o *readmodel.Orders }

func (p ordersProjection) Apply(ctx context.Context, events []schemas.Event) error {
	return p.o.Apply(ctx, events)
}

// runOrders runs the orders projection until ctx is done.
func (s *Service) runOrders(ctx context.Context) error {
	return consume.Run(ctx, s.spec(Orders, ordersProjection{readmodel.NewOrders(s.deps.Mongo)}))
}
