package config

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestUnknown(t *testing.T) {
	r := registry(t)
	for _, tc := range []struct {
		name    string
		environ map[string]string
		want    []Unknown
	}{
		{"the issue's misspelling", map[string]string{"INGEST_MAX_BATCHH": "10"},
			[]Unknown{{"INGEST_MAX_BATCHH", "INGEST_MAX_BATCH"}}},
		{"known settings and other programs' variables", map[string]string{"INGEST_MAX_BATCH": "10", "PORT": "1", "HOME": "/",
			"PATH": "/bin", "KILN_FAULTS": "1", "GRPC_GO_LOG_SEVERITY_LEVEL": "info", "OTEL_RESOURCE_ATTRIBUTES": "a=b",
			"REDIS_VERSION": "7", "NATS_SERVER": "x", "HOSTNAME": "h"}, nil},
		{"a missing word", map[string]string{"PROJECTOR_BATCH": "1"},
			[]Unknown{{"PROJECTOR_BATCH", "PROJECTOR_BATCH_SIZE"}}},
		{"a plural", map[string]string{"KILN_READ_KEY": "k"}, []Unknown{{"KILN_READ_KEY", "KILN_READ_KEYS"}}},
		{"lower case", map[string]string{"ingest_max_batch": "1"}, []Unknown{{"ingest_max_batch", "INGEST_MAX_BATCH"}}},
		{"nothing near", map[string]string{"KILN_FROBNICATE": "1"}, []Unknown{{"KILN_FROBNICATE", ""}}},
		{"a shared prefix one edit away", map[string]string{"MONGO_URL": "x", "REDIS_URI": "y"},
			[]Unknown{{"MONGO_URL", "MONGO_URI"}, {"REDIS_URI", "REDIS_URL"}}},
		{"Kubernetes service links", map[string]string{"KILN_INGEST_SERVICE_HOST": "10.0.0.1", "KILN_INGEST_SERVICE_PORT": "8080",
			"KILN_INGEST_SERVICE_PORT_HTTP": "8080", "KILN_INGEST_PORT": "tcp://10.0.0.1:8080", "KILN_INGEST_PORT_8080_TCP": "tcp://10.0.0.1:8080",
			"KILN_INGEST_PORT_8080_TCP_PROTO": "tcp", "KILN_INGEST_PORT_8080_TCP_PORT": "8080", "KILN_INGEST_PORT_8080_TCP_ADDR": "10.0.0.1"}, nil},
		{"a port without its service", map[string]string{"KILN_INGEST_PORT": "8080"}, []Unknown{{"KILN_INGEST_PORT", "KILN_INGEST_KEYS"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.want, r.Unknown(tc.environ))
		})
	}
}

func TestPrefixes(t *testing.T) {
	got := registry(t).Prefixes()
	for _, p := range []string{"KILN_", "INGEST_", "GATEWAY_", "PROJECTOR_", "NOTIFIER_", "WEBHOOKS_", "SOCKETIO_", "REALTIME_"} {
		require.Contains(t, got, p)
	}
	for _, p := range []string{"OTEL_", "GRPC_", "NATS_", "MONGO_", "REDIS_", "LOG_", "PORT_"} {
		require.NotContains(t, got, p, "%s is not Kiln's alone", p)
	}
}
