package serve

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/kilnhq/kiln/httpserver"
	"github.com/kilnhq/kiln/standalone"
	"github.com/kilnhq/kiln/webhooks"
)

// WebhooksConfig is the webhooks role's configuration: the outbound
// dispatcher and the endpoints' admin API. (Inbound POST
// /webhooks/{provider} is ingest's.)
type WebhooksConfig struct {
	Stores
	// HTTPAddr is the public listener: the endpoints' admin API.
	HTTPAddr string `env:"WEBHOOKS_ADDR" envDefault:":8082"`
	// AdminAddr is the admin listener: /metrics, /healthz, /readyz.
	AdminAddr string `env:"WEBHOOKS_ADMIN_ADDR" envDefault:"127.0.0.1:9105"`
	// AdminPprof serves net/http/pprof on the admin listener.
	AdminPprof bool `env:"ADMIN_PPROF" envDefault:"false"`
	Webhooks   webhooks.Config
}

// Validate reports the first invalid setting, naming its env var.
func (c *WebhooksConfig) Validate() error {
	if err := c.Stores.validate(); err != nil {
		return err
	}
	if err := c.listeners().validate("WEBHOOKS"); err != nil {
		return err
	}
	return c.Webhooks.Validate()
}

func (c *WebhooksConfig) listeners() Listeners {
	return Listeners{HTTPAddr: c.HTTPAddr, AdminAddr: c.AdminAddr, Pprof: c.AdminPprof}
}

// LoadWebhooksConfig reads the webhooks role's configuration from environ.
func LoadWebhooksConfig(environ map[string]string) (WebhooksConfig, error) {
	return loadConfig[WebhooksConfig](environ, "webhooks")
}

// RunWebhooks runs the webhooks role until ctx is done.
func RunWebhooks(ctx context.Context, cfg WebhooksConfig, log *slog.Logger) error {
	c, err := cfg.connect("kiln-webhooks", log)
	defer c.close()
	if err != nil {
		return err
	}
	part, err := standalone.NewWebhooks(ctx, cfg.Webhooks, c.db, c.js, log)
	if err != nil {
		return err
	}
	err = serveParts(ctx, cfg.listeners(), []standalone.Part{part}, httpserver.NewRegistry(), log)
	if derr := c.nc.Drain(); derr != nil && err == nil {
		err = fmt.Errorf("drain nats: %w", derr)
	}
	return err
}
