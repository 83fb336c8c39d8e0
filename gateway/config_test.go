package gateway_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/kilnhq/kiln/connect"
	"github.com/kilnhq/kiln/gateway"
	"github.com/kilnhq/kiln/httpserver"
	"github.com/kilnhq/kiln/schemas"
	"github.com/kilnhq/kiln/schemas/catalog"
	"github.com/kilnhq/kiln/telemetry"
)

func TestLoadConfigDefaults(t *testing.T) {
	t.Parallel()
	cfg, err := gateway.LoadConfig(map[string]string{})
	require.NoError(t, err)
	anyOrigin, err := httpserver.ParseOrigins("*")
	require.NoError(t, err)
	require.Equal(t, gateway.Config{
		HTTPAddr:      ":8081",
		AdminAddr:     "127.0.0.1:9102",
		OriginsConfig: httpserver.OriginsConfig{AllowedOrigins: anyOrigin},
		MongoConfig:   connect.MongoConfig{MongoURI: "mongodb://127.0.0.1:27017", MongoDatabase: "kiln"},
		RedisConfig:   connect.RedisConfig{RedisURL: "redis://127.0.0.1:6379/0"},
		NATSConfig:    connect.NATSConfig{NATSURL: "nats://127.0.0.1:4222"},
		SSE: gateway.SSEConfig{
			Buffer:          4096,
			MetricsInterval: 3 * time.Second,
			Heartbeat:       15 * time.Second,
			WriteTimeout:    10 * time.Second,
		},
		Schemas:   catalog.Config{Compatibility: "BACKWARD", Enforcement: "reject", UnknownTypes: "accept", CheckSample: 10000},
		Stream:    schemas.StreamOptions{Replicas: 1, DuplicateWindow: 2 * time.Minute},
		Telemetry: telemetry.Config{Protocol: telemetry.ProtocolGRPC, SampleRatio: 1},
	}, cfg)

	cfg, err = gateway.LoadConfig(map[string]string{
		"GATEWAY_SSE_BUFFER": "1024", "GATEWAY_SSE_METRICS_INTERVAL": "500ms",
		"GATEWAY_SSE_HEARTBEAT": "30s", "GATEWAY_SSE_WRITE_TIMEOUT": "1m", "NATS_URL": "nats://nats:4222",
	})
	require.NoError(t, err)
	require.Equal(t, gateway.SSEConfig{Buffer: 1024, MetricsInterval: 500 * time.Millisecond,
		Heartbeat: 30 * time.Second, WriteTimeout: time.Minute}, cfg.SSE)
	require.Equal(t, "nats://nats:4222", cfg.NATSURL)

	cfg, err = gateway.LoadConfig(map[string]string{"KILN_READ_KEYS": "a,b", "MONGO_DATABASE": "kiln_test-1"})
	require.NoError(t, err)
	require.Equal(t, []string{"a", "b"}, cfg.ReadKeys)
	require.Equal(t, "kiln_test-1", cfg.MongoDatabase)
}

func TestLoadConfigRefusesBadSettings(t *testing.T) {
	t.Parallel()
	tests := []struct {
		env  map[string]string
		name string // the env var the error must name
	}{
		{map[string]string{"GATEWAY_ADMIN_ADDR": ":8081"}, "GATEWAY_ADMIN_ADDR"},
		{map[string]string{"MONGO_URI": "postgres://x"}, "MONGO_URI"},
		{map[string]string{"MONGO_URI": "mongodb://user:secret@host:27017/x\x7f"}, "MONGO_URI"},
		{map[string]string{"MONGO_DATABASE": "a.b"}, "MONGO_DATABASE"},
		{map[string]string{"MONGO_DATABASE": "with space"}, "MONGO_DATABASE"},
		{map[string]string{"REDIS_URL": "http://127.0.0.1:6379"}, "REDIS_URL"},
		{map[string]string{"KILN_READ_KEYS": " , "}, "KILN_READ_KEYS"},
		{map[string]string{"GATEWAY_SSE_BUFFER": "0"}, "GATEWAY_SSE_BUFFER"},
		{map[string]string{"GATEWAY_SSE_BUFFER": "100000"}, "GATEWAY_SSE_BUFFER"},
		{map[string]string{"GATEWAY_SSE_METRICS_INTERVAL": "0s"}, "GATEWAY_SSE_METRICS_INTERVAL"},
		{map[string]string{"GATEWAY_SSE_HEARTBEAT": "-1s"}, "GATEWAY_SSE_HEARTBEAT"},
		{map[string]string{"GATEWAY_SSE_WRITE_TIMEOUT": "10ms"}, "GATEWAY_SSE_WRITE_TIMEOUT"},
		{map[string]string{"SCHEMAS_COMPATIBILITY": "sideways"}, "SCHEMAS_COMPATIBILITY"},
		{map[string]string{"SCHEMAS_ENFORCEMENT": "maybe"}, "SCHEMAS_ENFORCEMENT"},
		{map[string]string{"SCHEMAS_CHECK_SAMPLE": "-1"}, "SCHEMAS_CHECK_SAMPLE"},
	}
	for _, tt := range tests {
		_, err := gateway.LoadConfig(tt.env)
		require.ErrorContains(t, err, tt.name, "%v", tt.env)
		require.NotContains(t, err.Error(), "secret", "passwords are not echoed")
	}

	cfg, err := gateway.LoadConfig(map[string]string{})
	require.NoError(t, err)
	cfg.HTTPAddr, cfg.MongoDatabase = "", ""
	err = cfg.Validate()
	require.ErrorContains(t, err, "GATEWAY_ADDR", "an empty value set in code")
	require.ErrorContains(t, err, "MONGO_DATABASE", "every bad setting is reported")
}
