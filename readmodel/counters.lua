-- Apply a batch of events to Kiln's Redis counters, exactly once per stream
-- sequence. Every key is passed in KEYS (all of one hash tag: one Cluster
-- slot): KEYS[1] the meta hash, KEYS[2] the all-time totals, then the
-- seen bitmaps and second and minute buckets the events fall in.
-- ARGV: now (s), second-bucket TTL (s), minute-bucket TTL (s), seen-bitmap
-- TTL (s), epoch, max future skew (s), mark (1: counters started here need
-- a rebuild), then per event: its bit in its seen bitmap (seq mod 2^20),
-- eventType, timestamp ms, and the KEYS indexes of that seen bitmap (seq
-- div 2^20), its second bucket and its
-- minute bucket (0 for a bucket past retention at now, which is not
-- written). Returns {applied, fresh}: fresh is 1 when the counters did
-- not exist (a new or flushed Redis) and were started by this call; with
-- mark, they were started with a rebuild pending (rebuildUpTo 0: its
-- target is set by the projector), in this same step, so asOfSeq is never
-- claimed for partial totals.
local meta = KEYS[1]
local now = tonumber(ARGV[1])
local secTTL = tonumber(ARGV[2])
local minTTL = tonumber(ARGV[3])
local seenTTL = tonumber(ARGV[4])
local fresh = redis.call('HSETNX', meta, 'epoch', ARGV[5])
local skew = tonumber(ARGV[6])
if fresh == 1 then
  -- Started on this master, holding no acknowledged event yet: verified
  -- here (failover.go; replid() is defined before this script).
  redis.call('HSET', meta, 'replid', replid())
  if ARGV[7] == '1' then redis.call('HSET', meta, 'rebuildUpTo', 0, 'checkpoint', 0) end
end
local first = 8 -- the first event's arguments
local width = 6 -- arguments per event

local applied = 0
local all, secs, mins, seen = {}, {}, {}, {}
local at = {} -- a bucket key's second or minute

local function add(t, bucket, typ)
  local b = t[bucket]
  if not b then b = {}; t[bucket] = b end
  b[typ] = (b[typ] or 0) + 1
end

-- The seen bits are tested-and-set with one BITFIELD per bitmap (a SET
-- returns the bit's old value, in order, so a sequence twice in a batch
-- counts once), not one SETBIT per event: a command costs Redis far more
-- than a bit, and a replay sends thousands of events per call.
local ops, order = {}, {}
for i = first, #ARGV, width do
  local key = KEYS[tonumber(ARGV[i + 3])]
  local l = ops[key]
  if not l then l = {}; ops[key] = l; order[#order + 1] = key end
  l[#l + 1] = i
end
local chunk = 500 -- operations per BITFIELD (Lua's unpack is bounded)
for _, key in ipairs(order) do
  seen[key] = true
  local idx = ops[key]
  for c = 1, #idx, chunk do
    local args = {}
    -- The bit and the value go as strings: Redis formats a Lua number
    -- passed to a command, and the bits are already ARGV strings.
    for k = c, math.min(c + chunk - 1, #idx) do
      args[#args + 1] = 'SET'
      args[#args + 1] = 'u1'
      args[#args + 1] = ARGV[idx[k]]
      args[#args + 1] = '1'
    end
    local old = redis.call('BITFIELD', key, unpack(args))
    for k = c, math.min(c + chunk - 1, #idx) do
      if old[k - c + 1] == 0 then
        local i = idx[k]
        local typ = ARGV[i + 1]
        local s = math.floor(tonumber(ARGV[i + 2]) / 1000)
        applied = applied + 1
        all[typ] = (all[typ] or 0) + 1
        if s + secTTL > now then
          local k = tonumber(ARGV[i + 4])
          at[k] = s
          add(secs, k, typ)
        end
        local m = s - (s % 60)
        if m + 60 + minTTL > now then
          local k = tonumber(ARGV[i + 5])
          at[k] = m
          add(mins, k, typ)
        end
      end
    end
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
  flush(KEYS[2], all, nil)
  for k, counts in pairs(secs) do flush(KEYS[k], counts, expiry(at[k], secTTL)) end
  for k, counts in pairs(mins) do flush(KEYS[k], counts, expiry(at[k] + 60, minTTL)) end
end
return {applied, fresh}
