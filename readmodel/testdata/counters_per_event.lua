-- Apply a batch of events to Kiln's Redis counters, exactly once per stream
-- sequence. ARGV: prefix, now (s), second-bucket TTL (s), minute-bucket TTL
-- (s), seen-bitmap TTL (s), epoch, max future skew (s), mark (1: counters
-- started here need a rebuild), then (seq, eventType, timestamp ms)
-- triples. Returns {applied, fresh}: fresh is 1 when the counters did not
-- exist (a new or flushed Redis) and were started by this call; with mark,
-- they were started with a rebuild pending (rebuildUpTo 0: its target is
-- set by the projector), in this same step, so asOfSeq is never claimed
-- for partial totals.
local p = ARGV[1]
local now = tonumber(ARGV[2])
local secTTL = tonumber(ARGV[3])
local minTTL = tonumber(ARGV[4])
local seenTTL = tonumber(ARGV[5])
local fresh = redis.call('HSETNX', p .. 'meta', 'epoch', ARGV[6])
local skew = tonumber(ARGV[7])
if fresh == 1 then
  -- Started on this master, holding no acknowledged event yet: verified
  -- here (failover.go; replid() is defined before this script).
  redis.call('HSET', p .. 'meta', 'replid', replid())
  if ARGV[8] == '1' then redis.call('HSET', p .. 'meta', 'rebuildUpTo', 0, 'checkpoint', 0) end
end

local block = 1048576
local applied = 0
local all, secs, mins, seen = {}, {}, {}, {}

local function add(t, bucket, typ)
  local b = t[bucket]
  if not b then b = {}; t[bucket] = b end
  b[typ] = (b[typ] or 0) + 1
end

for i = 9, #ARGV, 3 do
  local seq = tonumber(ARGV[i])
  local typ = ARGV[i + 1]
  local s = math.floor(tonumber(ARGV[i + 2]) / 1000)
  local key = p .. 'seen:' .. math.floor(seq / block)
  seen[key] = true
  if redis.call('SETBIT', key, seq % block, 1) == 0 then
    applied = applied + 1
    all[typ] = (all[typ] or 0) + 1
    if s + secTTL > now then add(secs, s, typ) end
    local m = s - (s % 60)
    if m + 60 + minTTL > now then add(mins, m, typ) end
  end
end

for key in pairs(seen) do redis.call('EXPIRE', key, seenTTL) end

local function flush(key, counts, expireAt)
  local total = 0
  for typ, n in pairs(counts) do
    redis.call('HINCRBY', key, typ, n)
    total = total + n
  end
  redis.call('HINCRBY', key, '_total', total)
  if expireAt then redis.call('EXPIREAT', key, expireAt) end
end

-- A bucket expires retention after its own second or minute, but never
-- later than retention plus the accepted clock skew from now: a timestamp
-- far ahead (accepted before ingest bounded the skew, or by a skewed
-- ingest) cannot create keys that live for years.
local function expiry(at, ttl) return math.min(at + ttl, now + ttl + skew) end

if applied > 0 then
  flush(p .. 'all', all, nil)
  for s, counts in pairs(secs) do flush(p .. 's:' .. s, counts, expiry(s, secTTL)) end
  for m, counts in pairs(mins) do flush(p .. 'm:' .. m, counts, expiry(m + 60, minTTL)) end
end
return {applied, fresh}
