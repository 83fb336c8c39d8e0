package serve

import (
	"errors"

	"github.com/kilnhq/kiln/app/runner"
	"github.com/kilnhq/kiln/connect/envconfig"
	"github.com/kilnhq/kiln/httpserver"
	"github.com/kilnhq/kiln/telemetry"
	"github.com/kilnhq/kiln/webhooks"
)

// WebhooksConfig is the webhooks role's configuration: the outbound
// dispatcher and the endpoints' admin API. (Inbound POST
// /webhooks/{provider} is ingest's.)
type WebhooksConfig struct {
	Stores
	httpserver.OriginsConfig
	// Webhooks holds the role's listen addresses (WEBHOOKS_ADDR,
	// WEBHOOKS_ADMIN_ADDR), as gateway.Config and ingest.Config hold theirs.
	Webhooks webhooks.Config
	// Telemetry is the OpenTelemetry tracing (OTEL_* variables); off
	// unless OTEL_EXPORTER_OTLP_ENDPOINT is set.
	Telemetry telemetry.Config
}

// Validate reports the invalid settings, naming their env vars.
func (c *WebhooksConfig) Validate() error {
	return errors.Join(c.Stores.validate(), httpserver.ValidateAddrs("WEBHOOKS", c.Webhooks.HTTPAddr, c.Webhooks.AdminAddr), c.Webhooks.Validate(), c.Telemetry.Validate())
}

func (c *WebhooksConfig) listeners() runner.Listeners {
	return runner.Listeners{HTTPAddr: c.Webhooks.HTTPAddr, AdminAddr: c.Webhooks.AdminAddr, BodyLimit: bodyLimit, Origins: c.AllowedOrigins}
}

// LoadWebhooksConfig reads the webhooks role's configuration from environ.
func LoadWebhooksConfig(environ map[string]string) (WebhooksConfig, error) {
	return envconfig.Load[WebhooksConfig](environ, "webhooks")
}
