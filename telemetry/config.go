// Package telemetry starts Kiln's OpenTelemetry tracing: an OTLP exporter
// when OTEL_EXPORTER_OTLP_ENDPOINT is set, a no-op provider otherwise, and
// the W3C trace context carried in NATS message headers from the append to
// every consumer.
package telemetry

import (
	"fmt"
	"net/url"
)

// Protocols of the OTLP exporter (OTEL_EXPORTER_OTLP_PROTOCOL).
const (
	ProtocolGRPC = "grpc"
	ProtocolHTTP = "http/protobuf"
)

// Config says whether and where spans are exported. The env var names are
// OpenTelemetry's own, so a collector set up for other services works as is.
type Config struct {
	// Endpoint is the OTLP collector's URL, e.g. http://127.0.0.1:4317 for
	// gRPC or http://127.0.0.1:4318 for HTTP (the path /v1/traces is
	// appended). Empty turns tracing off: a no-op provider, no exporter.
	Endpoint string `env:"OTEL_EXPORTER_OTLP_ENDPOINT"`
	// Protocol is grpc or http/protobuf.
	Protocol string `env:"OTEL_EXPORTER_OTLP_PROTOCOL" envDefault:"grpc"`
	// ServiceName is the service.name resource; empty takes the role's
	// name (kiln-ingest, kiln-projector, …).
	ServiceName string `env:"OTEL_SERVICE_NAME"`
	// SampleRatio is the share of new traces sampled (0–1); a trace whose
	// parent was sampled is always sampled (parentbased_traceidratio).
	SampleRatio float64 `env:"OTEL_TRACES_SAMPLER_ARG" envDefault:"1"`
}

// Enabled reports whether spans are exported.
func (c Config) Enabled() bool { return c.Endpoint != "" }

// Named returns c with ServiceName defaulted to name.
func (c Config) Named(name string) Config {
	if c.ServiceName == "" {
		c.ServiceName = name
	}
	return c
}

// Validate reports the first invalid setting, naming its env var.
func (c Config) Validate() error {
	switch c.Protocol {
	case ProtocolGRPC, ProtocolHTTP:
	default:
		return fmt.Errorf("OTEL_EXPORTER_OTLP_PROTOCOL must be %s or %s, got %q", ProtocolGRPC, ProtocolHTTP, c.Protocol)
	}
	if c.SampleRatio < 0 || c.SampleRatio > 1 {
		return fmt.Errorf("OTEL_TRACES_SAMPLER_ARG must be between 0 and 1, got %g", c.SampleRatio)
	}
	if c.Endpoint == "" {
		return nil
	}
	u, err := url.Parse(c.Endpoint)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("OTEL_EXPORTER_OTLP_ENDPOINT must be an http:// or https:// URL, got %q", c.Endpoint)
	}
	return nil
}
