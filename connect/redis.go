package connect

import (
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/redis/go-redis/v9"

	"github.com/kilnhq/kiln/telemetry/redact"
)

// REDIS_URL names one of the three ways Redis is run; each is parsed by
// go-redis's own parser (ParseURL, ParseFailoverURL, ParseClusterURL), so
// go-redis's query options (dial_timeout, pool_size, ...) work in all:
//
//	redis://[user:pass@]host:port[/db]                      one server (rediss:// for TLS)
//	redis-sentinel://[user:pass@]h1:26379,h2:26379/master[/db]  Sentinel (rediss-sentinel:// for TLS)
//	redis-cluster://[user:pass@]h1:7000,h2:7001,...          Cluster (rediss-cluster:// for TLS)
//
// With Sentinel the user and password are the data servers' (the master's
// and replicas'); the sentinels are asked without credentials. With
// Cluster every listed node is a seed: one reachable node is enough.

// RedisTarget is a parsed REDIS_URL: exactly one of its fields is set.
type RedisTarget struct {
	Single   *redis.Options
	Failover *redis.FailoverOptions
	Cluster  *redis.ClusterOptions
}

// ParseRedisURL parses raw (see the forms above). Its errors name
// REDIS_URL and never print the password.
func ParseRedisURL(raw string) (RedisTarget, error) {
	t, err := parseRedisURL(raw)
	if err != nil {
		return RedisTarget{}, fmt.Errorf("REDIS_URL %s: %w", redact.URL(raw), redact.Error(err, raw))
	}
	return t, nil
}

func parseRedisURL(raw string) (RedisTarget, error) {
	scheme, _, ok := strings.Cut(raw, "://")
	if !ok {
		return RedisTarget{}, errors.New("not a URL: want redis://, rediss://, redis-sentinel:// or redis-cluster://")
	}
	switch scheme {
	case "redis", "rediss":
		o, err := redis.ParseURL(raw)
		return RedisTarget{Single: o}, err
	case "redis-sentinel", "rediss-sentinel":
		u, hosts, err := splitHosts(raw)
		if err != nil {
			return RedisTarget{}, err
		}
		path := strings.FieldsFunc(u.Path, func(r rune) bool { return r == '/' })
		if len(path) == 0 || len(path) > 2 {
			return RedisTarget{}, errors.New("a Sentinel URL names the master after the addresses: redis-sentinel://host:26379,host2:26379/mymaster[/db]")
		}
		q := u.Query()
		q.Set("master_name", path[0])
		if len(path) == 2 {
			q.Set("db", path[1])
		}
		if u.User != nil {
			q.Set("username", u.User.Username())
			if p, ok := u.User.Password(); ok {
				q.Set("password", p)
			}
		}
		o, err := redis.ParseFailoverURL(goRedisURL(scheme, nil, hosts, q))
		return RedisTarget{Failover: o}, err
	case "redis-cluster", "rediss-cluster":
		u, hosts, err := splitHosts(raw)
		if err != nil {
			return RedisTarget{}, err
		}
		if strings.Trim(u.Path, "/") != "" {
			return RedisTarget{}, errors.New("a Cluster URL has no database or path: Redis Cluster has database 0 only")
		}
		o, err := redis.ParseClusterURL(goRedisURL(scheme, u.User, hosts, u.Query()))
		return RedisTarget{Cluster: o}, err
	default:
		return RedisTarget{}, fmt.Errorf("unknown scheme %q: want redis://, rediss://, redis-sentinel:// or redis-cluster://", scheme)
	}
}

// splitHosts parses raw and returns its comma-separated host:port list.
func splitHosts(raw string) (*url.URL, []string, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, nil, err
	}
	var hosts []string
	for h := range strings.SplitSeq(u.Host, ",") {
		if h = strings.TrimSpace(h); h == "" {
			return nil, nil, errors.New("empty address in the host list")
		}
		hosts = append(hosts, h)
	}
	if len(hosts) == 0 {
		return nil, nil, errors.New("no address")
	}
	return u, hosts, nil
}

// goRedisURL writes the URL go-redis's parsers take: the first address as
// the host, the others as addr parameters.
func goRedisURL(scheme string, user *url.Userinfo, hosts []string, q url.Values) string {
	s := "redis"
	if strings.HasPrefix(scheme, "rediss") {
		s = "rediss"
	}
	for _, h := range hosts[1:] {
		q.Add("addr", h)
	}
	u := url.URL{Scheme: s, User: user, Host: hosts[0], RawQuery: q.Encode()}
	return u.String()
}

// Client returns a client for the target; it connects on first use.
func (t RedisTarget) Client() redis.UniversalClient {
	switch {
	case t.Cluster != nil:
		return redis.NewClusterClient(t.Cluster)
	case t.Failover != nil:
		return redis.NewFailoverClient(t.Failover)
	default:
		return redis.NewClient(t.Single)
	}
}

// SetPoolSize sets the connection pool size (per node with Cluster).
func (t RedisTarget) SetPoolSize(n int) {
	switch {
	case t.Cluster != nil:
		t.Cluster.PoolSize = n
	case t.Failover != nil:
		t.Failover.PoolSize = n
	default:
		t.Single.PoolSize = n
	}
}
