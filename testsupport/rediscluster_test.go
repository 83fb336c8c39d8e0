package testsupport

import (
	"context"
	"testing"
)

func TestRedisClusterAndSentinelStart(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	t.Run("cluster", func(t *testing.T) {
		t.Parallel()
		c := StartRedisCluster(t, false).Client(t)
		for _, k := range []string{"a", "b", "c", "d"} {
			if err := c.Set(ctx, k, k, 0).Err(); err != nil {
				t.Fatal(err)
			}
		}
	})
	t.Run("sentinel", func(t *testing.T) {
		t.Parallel()
		if err := StartRedisSentinel(t).Client(t).Set(ctx, "a", "b", 0).Err(); err != nil {
			t.Fatal(err)
		}
	})
}
