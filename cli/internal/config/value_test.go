package config

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestValues(t *testing.T) {
	r := registry(t)
	environ := map[string]string{
		"MONGO_URI":          "mongodb://kiln:hunter2@db:27017/?replicaSet=rs0",
		"NATS_URL":           "nats://a:pw1@n1:4222, nats://b:pw2@n2:4222",
		"KILN_TOKEN_SECRETS": "0123456789abcdef0123456789abcdef",
		"SLACK_WEBHOOK_URL":  "https://hooks.slack.com/services/T0/B0/XYZ",
		"SMTP_PASSWORD":      "pw",
		"WS_TOKEN":           "",
		"INGEST_MAX_BATCH":   "10",
	}
	for _, tc := range []struct {
		role, name     string
		value, source  string
		defaultWritten string
	}{
		{"projector", "MONGO_URI", "mongodb://kiln:xxxxx@db:27017/?replicaSet=rs0", FromEnv, "mongodb://127.0.0.1:27017"},
		{"gateway", "NATS_URL", "nats://a:xxxxx@n1:4222,nats://b:xxxxx@n2:4222", FromEnv, "nats://127.0.0.1:4222"},
		{"gateway", "KILN_TOKEN_SECRETS", Redacted, FromEnv, ""},
		{"notifier", "SLACK_WEBHOOK_URL", Redacted, FromEnv, ""},
		{"notifier", "SMTP_PASSWORD", Redacted, FromEnv, ""},
		{"realtime", "WS_TOKEN", "", FromEnv, ""},
		{"ingest", "INGEST_MAX_BATCH", "10", FromEnv, "1000"},
		{"ingest", "INGEST_PUBLISH_TIMEOUT", "1500ms", FromDefault, "1500ms"},
		{Standalone, "MONGO_URI", "mongodb://kiln:xxxxx@db:27017/?replicaSet=rs0", FromEnv, ""},
		{"", "MONGO_URI", "mongodb://kiln:xxxxx@db:27017/?replicaSet=rs0", FromEnv, "mongodb://127.0.0.1:27017; standalone: -"},
		{"", "REDIS_URL", "redis://127.0.0.1:6379/0; standalone: -", FromDefault, "redis://127.0.0.1:6379/0; standalone: -"},
	} {
		t.Run(tc.role+"/"+tc.name, func(t *testing.T) {
			var got *Value
			for _, v := range r.Values(environ, tc.role) {
				if v.Name == tc.name {
					got = &v
				}
			}
			require.NotNil(t, got, "%s reads %s", tc.role, tc.name)
			require.Equal(t, tc.value, got.Value)
			require.Equal(t, tc.source, got.Source)
			require.Equal(t, tc.defaultWritten, got.Default)
		})
	}
	for _, v := range r.Values(environ, "") {
		for _, secret := range []string{"hunter2", "pw1", "pw2", "0123456789abcdef", "XYZ"} {
			require.NotContains(t, v.Value, secret, v.Name)
		}
	}
}

func TestValuesOfARole(t *testing.T) {
	r := registry(t)
	names := func(role string) []string {
		var out []string
		for _, v := range r.Values(nil, role) {
			out = append(out, v.Name)
		}
		return out
	}
	require.Contains(t, names("ingest"), "INGEST_ADDR")
	require.NotContains(t, names(Standalone), "INGEST_ADDR", "kiln run sets its own listeners")
	require.Contains(t, names("realtime"), "INGEST_MAX_BATCH", "realtime appends through ingest's path")
	require.NotContains(t, names("projector"), "INGEST_MAX_BATCH")
	require.Contains(t, names(Standalone), "PORT")
}
