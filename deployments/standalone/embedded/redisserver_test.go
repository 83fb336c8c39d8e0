package embedded

import (
	"context"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"
)

// Not parallel: it changes the working directory. A relative data folder
// (kiln run's default ./data) used to be resolved twice: redis-server ran
// in data/redis and was told --dir data/redis, so it exited at once.
func TestRedisServerWithARelativeDataDir(t *testing.T) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Fatalf("redis-server is not on PATH (make test installs it): %v", err)
	}
	wd := t.TempDir()
	t.Chdir(wd)
	rs, err := StartRedisServer(context.Background(), bin, 0, "data")
	require.NoError(t, err)
	t.Cleanup(rs.Shutdown)
	require.NotEmpty(t, rs.Version())
	opts, err := redis.ParseURL(rs.URL())
	require.NoError(t, err)
	rdb := redis.NewClient(opts)
	defer rdb.Close()
	dir, err := rdb.ConfigGet(context.Background(), "dir").Result()
	require.NoError(t, err)
	require.Equal(t, filepath.Join(wd, "data", "redis"), dir["dir"])
	require.FileExists(t, filepath.Join(wd, "data", "redis", "redis.log"))
}
