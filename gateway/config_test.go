package gateway_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/kilnhq/kiln/gateway"
)

func TestLoadConfigDefaults(t *testing.T) {
	t.Parallel()
	cfg, err := gateway.LoadConfig(map[string]string{})
	require.NoError(t, err)
	require.Equal(t, gateway.Config{
		HTTPAddr:      ":8081",
		AdminAddr:     ":9102",
		MongoURI:      "mongodb://127.0.0.1:27017",
		MongoDatabase: "kiln",
		RedisURL:      "redis://127.0.0.1:6379/0",
	}, cfg)

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
