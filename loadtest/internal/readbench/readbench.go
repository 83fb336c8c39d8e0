// Package readbench loads Kiln's read API — GET /events pages and
// GET /metrics — over pooled fasthttp connections, and runs the same-shape
// raw Redis commands as the baseline: what the recent-events cache and the
// counters cost in Redis itself, without Kiln around them.
package readbench

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/valyala/fasthttp"

	"github.com/kilnhq/kiln/readmodel"
)

// Getter reads one Kiln over pooled connections. Safe for concurrent use.
type Getter struct {
	hc   *fasthttp.HostClient
	base string
	auth string
}

// NewGetter returns a Getter for baseURL with up to conns connections.
func NewGetter(baseURL, apiKey string, conns int, timeout time.Duration) (*Getter, error) {
	u, err := url.Parse(baseURL)
	if err != nil || u.Host == "" || u.Scheme != "http" {
		return nil, fmt.Errorf("kiln url %q: want http://host:port", baseURL)
	}
	addr := u.Host
	if u.Port() == "" {
		addr = net.JoinHostPort(u.Hostname(), "80")
	}
	g := &Getter{base: strings.TrimSuffix(baseURL, "/"),
		hc: &fasthttp.HostClient{Addr: addr, MaxConns: conns, MaxConnWaitTimeout: timeout, ReadTimeout: timeout, WriteTimeout: timeout}}
	if apiKey != "" {
		g.auth = "Bearer " + apiKey
	}
	return g, nil
}

// Answer is what one GET returned.
type Answer struct {
	Status int
	Source string // X-Kiln-Source
	Bytes  int
}

// Get fetches path (with its query) and reads the whole answer.
func (g *Getter) Get(path string) (Answer, error) {
	req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	req.SetRequestURI(g.base + path)
	if g.auth != "" {
		req.Header.Set(fasthttp.HeaderAuthorization, g.auth)
	}
	if err := g.hc.Do(req, resp); err != nil {
		return Answer{}, fmt.Errorf("GET %s: %w", path, err)
	}
	a := Answer{Status: resp.StatusCode(), Source: string(resp.Header.Peek("X-Kiln-Source")), Bytes: len(resp.Body())}
	if a.Status != fasthttp.StatusOK {
		return a, fmt.Errorf("GET %s: status %d", path, a.Status)
	}
	return a, nil
}

// RedisEvents is the baseline of one GET /events shape: the newest 51
// positions of an index (ZREVRANGEBYLEX, as the cache's script reads them)
// and the 50 event documents (HMGET), as two plain commands. prefix is the
// live generation's key prefix (LivePrefix).
func RedisEvents(ctx context.Context, rdb redis.UniversalClient, prefix, index string) error {
	pos, err := rdb.ZRevRangeByLex(ctx, readmodel.RecentPrefixFor(prefix)+index, &redis.ZRangeBy{Max: "+", Min: "-", Count: 51}).Result()
	if err != nil {
		return err
	}
	if len(pos) == 0 {
		return errors.New("baseline: the recent-events cache is empty")
	}
	return rdb.HMGet(ctx, readmodel.RecentPrefixFor(prefix)+"ev", pos[:min(50, len(pos))]...).Err()
}

// RedisMetrics is the baseline of GET /metrics: the 121 hashes a snapshot
// reads (60 seconds, 60 minutes, all-time totals) and the checkpoint, in
// one pipeline.
func RedisMetrics(ctx context.Context, rdb redis.UniversalClient, prefix string, now time.Time) error {
	pipe := rdb.Pipeline()
	sec := now.Unix()
	minute := sec - sec%60
	for i := range int64(60) {
		pipe.HGetAll(ctx, prefix+"s:"+strconv.FormatInt(sec-i, 10))
		pipe.HGetAll(ctx, prefix+"m:"+strconv.FormatInt(minute-i*60, 10))
	}
	pipe.HGetAll(ctx, prefix+"all")
	pipe.HGet(ctx, prefix+"meta", "checkpoint")
	_, err := pipe.Exec(ctx)
	if errors.Is(err, redis.Nil) {
		err = nil
	}
	return err
}

// LivePrefix is the Redis key prefix of the live counters generation (the
// cache and counters move to a new one when a replay switches), which the
// baselines must read to read what the gateway reads.
func LivePrefix(ctx context.Context, rdb redis.UniversalClient) (string, error) {
	gen, err := readmodel.CountersGeneration(ctx, rdb)
	if err != nil {
		return "", err
	}
	return readmodel.PrefixFor(gen), nil
}
