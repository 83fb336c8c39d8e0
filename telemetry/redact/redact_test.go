package redact_test

import (
	"errors"
	"fmt"
	"net/url"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/kilnhq/kiln/telemetry/redact"
)

func TestURL(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ in, want string }{
		{"mongodb://kiln:s3cret@db:27017/kiln?authSource=admin", "mongodb://kiln:xxxxx@db:27017/kiln?authSource=admin"},
		{"redis://:s3cret@cache:6379/0", "redis://:xxxxx@cache:6379/0"},
		{"nats://user:p%40ss@nats:4222", "nats://user:xxxxx@nats:4222"},
		{"redis://cache:6379/0", "redis://cache:6379/0"},
		{"mongodb://kiln@db", "mongodb://kiln@db"},
		// Unparsable (bad port, bad escape): scrubbed by hand.
		{"redis://:s3cret@cache:port/0", "redis://:xxxxx@cache:port/0"},
		{"mongodb://kiln:s3%zz@db/x", "mongodb://kiln:xxxxx@db/x"},
		{"mongodb://kiln:pa/ss@word@db/x", "mongodb://kiln:xxxxx@db/x"},
	} {
		require.Equal(t, tc.want, redact.URL(tc.in), tc.in)
	}
}

func TestError(t *testing.T) {
	t.Parallel()
	const uri = "redis://:s3cret%21@cache:port/0"
	_, perr := url.Parse(uri)
	require.Error(t, perr)
	base := errors.New("base")
	err := redact.Error(fmt.Errorf("REDIS_URL: %w (%w) s3cret!", perr, base), uri)
	require.NotContains(t, err.Error(), "s3cret")
	require.Contains(t, err.Error(), "xxxxx")
	require.ErrorIs(t, err, base)
	var ue *url.Error
	require.ErrorAs(t, err, &ue)
	require.NoError(t, redact.Error(nil, uri))
	plain := errors.New("no secret here")
	require.Same(t, plain, redact.Error(plain, uri))
}
