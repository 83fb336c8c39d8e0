package projbench

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// ServerTime reads Redis' INFO commandstats: the time the server spent
// executing each command since its stats were last reset, by command name
// (evalsha, hincrby, …). Two reads around a measurement tell how much of
// it the server spent and how much the client and the network did.
func ServerTime(ctx context.Context, rdb redis.UniversalClient) (map[string]time.Duration, error) {
	info, err := rdb.Info(ctx, "commandstats").Result()
	if err != nil {
		return nil, fmt.Errorf("info commandstats: %w", err)
	}
	return parseCommandStats(info), nil
}

// parseCommandStats parses lines such as
// cmdstat_evalsha:calls=658,usec=838489,usec_per_call=1274.30,…
func parseCommandStats(info string) map[string]time.Duration {
	out := map[string]time.Duration{}
	for line := range strings.SplitSeq(info, "\n") {
		name, fields, ok := strings.Cut(strings.TrimSpace(line), ":")
		name, isCmd := strings.CutPrefix(name, "cmdstat_")
		if !ok || !isCmd {
			continue
		}
		for f := range strings.SplitSeq(fields, ",") {
			if v, ok := strings.CutPrefix(f, "usec="); ok {
				if us, err := strconv.ParseInt(v, 10, 64); err == nil {
					out[name] = time.Duration(us) * time.Microsecond
				}
			}
		}
	}
	return out
}

// Since returns the server time per command spent between before and now.
func Since(before, now map[string]time.Duration) map[string]time.Duration {
	out := map[string]time.Duration{}
	for name, d := range now {
		if delta := d - before[name]; delta > 0 {
			out[name] = delta
		}
	}
	return out
}
