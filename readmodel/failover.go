package readmodel

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// Redis replication is asynchronous: a replica promoted after its master
// died holds a prefix of the master's writes, so counts and cached events
// the projector applied and acked may be missing from the new master. The
// counters and the cache each keep, in their meta hash, the replication ID
// (INFO replication master_replid) of the master that last verified them:
// a promoted replica has a replication ID of its own, so a meta hash whose
// replid is not its master's was written, at least in part, by another
// master that may have held more. Until the projector has verified them
// against the stream (re-applying every sequence above their checkpoint,
// which the seen bitmaps and the cache's ids make idempotent) and recorded
// the new master's ID (MarkVerified), their checkpoints do not advance,
// and the cache does not answer queries.
//
// Why the checkpoint is a safe start: it is written only on a verified
// master (the scripts below compare replids in the same step), after the
// effect of every sequence up to it was acknowledged by that master, and a
// replica holds a prefix of its master's writes: if it holds the
// checkpoint, it holds everything written before it in that slot.

// replidLua defines replid(): the replication ID of the master running the
// script (empty where INFO has none, as in a fake Redis).
const replidLua = `
local function replid()
  local info = redis.pcall('INFO', 'replication')
  if type(info) ~= 'string' then return '' end
  return string.match(info, 'master_replid:(%w+)') or ''
end
`

// MasterCheck is what a meta hash says about the master holding it.
type MasterCheck struct {
	// Exists: the meta hash has an epoch (the counters or cache exist).
	Exists bool
	// Verified: the master holding them is the one that last verified
	// them (or started them).
	Verified bool
	// Checkpoint is the sequence up to which every event's effect is
	// known to be on this master, when Verified is false.
	Checkpoint uint64
	// Replid is the current master's replication ID.
	Replid string
	// Epoch is the meta hash's epoch.
	Epoch string
}

var (
	checkMasterScript = redis.NewScript(replidLua + `
local m = redis.call('HMGET', KEYS[1], 'epoch', 'replid', 'checkpoint')
local cur = replid()
local exists, verified = 0, 0
if m[1] then exists = 1 end
if m[2] == cur then verified = 1 end
return {exists, verified, m[3] or '0', cur, m[1] or ''}`)

	markVerifiedScript = redis.NewScript(replidLua + `
if replid() ~= ARGV[1] then return 0 end
local m = redis.call('HMGET', KEYS[1], 'epoch', 'checkpoint')
if m[1] ~= ARGV[2] or (m[2] or '0') ~= ARGV[3] then return 0 end
redis.call('HSET', KEYS[1], 'replid', ARGV[1])
return 1`)
)

// checkMaster reads the MasterCheck of the meta hash at key.
func checkMaster(ctx context.Context, rdb redis.UniversalClient, key string) (MasterCheck, error) {
	res, err := checkMasterScript.Run(ctx, rdb, []string{key}).Slice()
	if err == nil && len(res) != 5 {
		err = errors.New("short reply")
	}
	if err != nil {
		return MasterCheck{}, fmt.Errorf("check redis master of %s: %w", key, err)
	}
	exists, _ := res[0].(int64)
	verified, _ := res[1].(int64)
	cp, _ := res[2].(string)
	c := MasterCheck{Exists: exists == 1, Verified: verified == 1}
	c.Replid, _ = res[3].(string)
	c.Epoch, _ = res[4].(string)
	if c.Checkpoint, err = strconv.ParseUint(cp, 10, 64); err != nil {
		return MasterCheck{}, fmt.Errorf("check redis master of %s: checkpoint %q", key, cp)
	}
	return c, nil
}

// markVerified records c.Replid as the master that verified the meta hash
// at key, if it is still the master holding it and the hash is as c saw
// it (same epoch and checkpoint: what the verification started from).
func markVerified(ctx context.Context, rdb redis.UniversalClient, key string, c MasterCheck) (bool, error) {
	ok, err := markVerifiedScript.Run(ctx, rdb, []string{key}, c.Replid, c.Epoch, strconv.FormatUint(c.Checkpoint, 10)).Bool()
	if err != nil && !errors.Is(err, redis.Nil) {
		return false, fmt.Errorf("mark %s verified: %w", key, err)
	}
	return ok, nil
}

// CheckMaster says whether the counters are on the master that verified
// them, and if not, from which sequence they must be verified.
func (c *Counters) CheckMaster(ctx context.Context) (MasterCheck, error) {
	p, err := c.keyPrefix(ctx)
	if err != nil {
		return MasterCheck{}, err
	}
	return checkMaster(ctx, c.rdb, p+"meta")
}

// MarkVerified records that the counters hold every acknowledged event on
// the master that check (read before the verification) saw: false if
// another master holds them now, or their epoch or checkpoint changed
// meanwhile (verify again).
func (c *Counters) MarkVerified(ctx context.Context, check MasterCheck) (bool, error) {
	p, err := c.keyPrefix(ctx)
	if err != nil {
		return false, err
	}
	return markVerified(ctx, c.rdb, p+"meta", check)
}

// CheckMaster is Counters.CheckMaster for the cache (its checkpoint is
// the recent projection's ack floor).
func (r *Recent) CheckMaster(ctx context.Context) (MasterCheck, error) {
	p, err := r.keyPrefix(ctx)
	if err != nil {
		return MasterCheck{}, err
	}
	return checkMaster(ctx, r.rdb, p+"meta")
}

// MarkVerified is Counters.MarkVerified for the cache.
func (r *Recent) MarkVerified(ctx context.Context, check MasterCheck) (bool, error) {
	p, err := r.keyPrefix(ctx)
	if err != nil {
		return false, err
	}
	return markVerified(ctx, r.rdb, p+"meta", check)
}

// Durability is how long a write waits for Redis replicas before it is
// reported done: after the script, WAIT on the same connection (WAIT
// counts the replicas that have that connection's writes), so that an
// acknowledged event's effect survives its master. Zero Replicas: no wait.
type Durability struct {
	// Replicas is how many replicas must confirm each write.
	Replicas int
	// Timeout bounds the wait; fewer confirmations by then fail the write
	// (the projector retries the batch, which is idempotent, and reports
	// the projection waiting for Redis meanwhile).
	Timeout time.Duration
}

// runDurably runs s with keys and args, then waits as d says, both on one
// connection to the master holding keys[0].
func runDurably(ctx context.Context, rdb redis.UniversalClient, d Durability, s *redis.Script, keys []string, args ...any) *redis.Cmd {
	if d.Replicas <= 0 {
		return s.Run(ctx, rdb, keys, args...)
	}
	pipeline := rdb.Pipeline
	if cc, ok := rdb.(*redis.ClusterClient); ok {
		m, err := cc.MasterForKey(ctx, keys[0])
		if err != nil {
			cmd := redis.NewCmd(ctx)
			cmd.SetErr(err)
			return cmd
		}
		pipeline = m.Pipeline
	}
	run := func(eval func(p redis.Pipeliner) *redis.Cmd) (*redis.Cmd, *redis.Cmd) {
		p := pipeline()
		cmd := eval(p)
		wait := p.Do(ctx, "WAIT", d.Replicas, d.Timeout.Milliseconds())
		_, _ = p.Exec(ctx) // the errors are the commands'
		return cmd, wait
	}
	cmd, wait := run(func(p redis.Pipeliner) *redis.Cmd { return s.EvalSha(ctx, p, keys, args...) })
	if redis.HasErrorPrefix(cmd.Err(), "NOSCRIPT") {
		cmd, wait = run(func(p redis.Pipeliner) *redis.Cmd { return s.Eval(ctx, p, keys, args...) })
	}
	if cmd.Err() != nil {
		return cmd
	}
	if n, err := wait.Int64(); err != nil {
		cmd.SetErr(fmt.Errorf("wait for %d redis replicas: %w", d.Replicas, err))
	} else if n < int64(d.Replicas) {
		cmd.SetErr(fmt.Errorf("%d of %d redis replicas confirmed the write within %s", n, d.Replicas, d.Timeout))
	}
	return cmd
}
