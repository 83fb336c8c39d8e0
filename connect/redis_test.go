package connect

import (
	"slices"
	"strings"
	"testing"
)

func TestParseRedisURL(t *testing.T) {
	t.Run("one server", func(t *testing.T) {
		r, err := ParseRedisURL("redis://u:secret@10.0.0.1:6380/2")
		if err != nil || r.Single == nil || r.Single.Addr != "10.0.0.1:6380" || r.Single.DB != 2 || r.Single.Password != "secret" {
			t.Fatalf("got %+v, %v", r.Single, err)
		}
	})
	t.Run("sentinel", func(t *testing.T) {
		r, err := ParseRedisURL("redis-sentinel://u:secret@s1:26379,s2:26380,s3:26381/mymaster/3?dial_timeout=2s")
		o := r.Failover
		if err != nil || o == nil {
			t.Fatalf("got %+v, %v", r, err)
		}
		if o.MasterName != "mymaster" || o.DB != 3 || o.Username != "u" || o.Password != "secret" || o.SentinelPassword != "" ||
			!slices.Equal(o.SentinelAddrs, []string{"s1:26379", "s2:26380", "s3:26381"}) || o.DialTimeout.Seconds() != 2 {
			t.Fatalf("got %+v", o)
		}
	})
	t.Run("cluster", func(t *testing.T) {
		r, err := ParseRedisURL("redis-cluster://:secret@n1:7000,n2:7001?pool_size=7")
		o := r.Cluster
		if err != nil || o == nil {
			t.Fatalf("got %+v, %v", r, err)
		}
		if !slices.Equal(o.Addrs, []string{"n1:7000", "n2:7001"}) || o.Password != "secret" || o.PoolSize != 7 {
			t.Fatalf("got %+v", o)
		}
	})
	for _, bad := range []string{
		"mongodb://u:secret@h:1",
		"redis-sentinel://u:secret@s1:26379,s2:26379",
		"redis-sentinel://u:secret@s1:26379/m/x",
		"redis-cluster://u:secret@n1:7000,,n2:7001",
		"redis-cluster://u:secret@n1:7000/1",
		"redis://u:secret@h:6379/0?bogus=1",
		"redis-cluster://u:secret@n1:7000?bogus=1",
	} {
		_, err := ParseRedisURL(bad)
		if err == nil {
			t.Errorf("%s: accepted", bad)
			continue
		}
		if msg := err.Error(); !strings.HasPrefix(msg, "REDIS_URL") || strings.Contains(msg, "secret") {
			t.Errorf("%s: error %q does not name REDIS_URL or shows the password", bad, msg)
		}
		if err := (RedisConfig{RedisURL: bad}).Validate(); err == nil {
			t.Errorf("%s: Validate accepted it", bad)
		}
	}
}
