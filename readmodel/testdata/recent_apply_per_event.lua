-- Add events to Kiln's recent-events cache and trim it to its bound, in one
-- atomic step. ARGV: prefix (the test passes the whole cache prefix), max events, epoch, then (position, eventType,
-- userId, id, JSON) quintuples. A position is the event's place in the
-- newest-first order: 12 hex digits of timestamp then 16 of stream sequence,
-- so the lexicographic order of positions is the (timestamp, seq) order.
--
-- Keys under <prefix>recent: — all, t:<type>, u:<userId> (sorted sets of
-- positions, all scores 0), ev (position -> JSON), tu (position -> type,
-- id, user for trimming), ids (event id -> position: the first copy of an id
-- wins, as in MongoDB), meta (epoch, complete, floor, names, checkpoints),
-- tb (the filter of index names that lost an event: left out at or below
-- the floor, or trimmed; markTrimmed is defined before this script).
--
-- The cache holds every applied event whose position is above meta.floor
-- (the highest position ever trimmed): an event at or below the floor is
-- not added, so re-adding is idempotent under redelivery, crashes and two
-- projectors. Returns {added, fresh}; fresh is 1 when this call created the
-- cache's epoch (a new or flushed Redis).
local p = ARGV[1] -- the cache's whole key prefix
local maxEvents = tonumber(ARGV[2])
local meta = p .. 'meta'
local fresh = redis.call('HSETNX', meta, 'epoch', ARGV[3])
-- A cache started here holds no acknowledged event yet: verified on this
-- master (failover.go; replid() is defined before this script).
if fresh == 1 then redis.call('HSET', meta, 'replid', replid()) end
local floor = redis.call('HGET', meta, 'floor')
local namesKept = redis.call('HGET', meta, 'names') == floor

local added = 0
for i = 4, #ARGV, 5 do
  local pos, typ, user, id, json = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], ARGV[i + 4]
  if not floor or pos > floor then
    local have = redis.call('HGET', p .. 'ids', id)
    if not have or have == pos then
      if not have then redis.call('HSET', p .. 'ids', id, pos) end
      if redis.call('ZADD', p .. 'all', 0, pos) == 1 then added = added + 1 end
      redis.call('ZADD', p .. 't:' .. typ, 0, pos)
      redis.call('ZADD', p .. 'u:' .. user, 0, pos)
      redis.call('HSET', p .. 'ev', pos, json)
      redis.call('HSET', p .. 'tu', pos, typ .. '\n' .. #id .. '\n' .. id .. user)
    end
  else
    markTrimmed(p .. 'tb', {'t:' .. typ, 'u:' .. user})
  end
end

local n = redis.call('ZCARD', p .. 'all')
if n > maxEvents then
  local victims = redis.call('ZRANGEBYLEX', p .. 'all', '-', '+', 'LIMIT', 0, n - maxEvents)
  for _, pos in ipairs(victims) do
    local tu = redis.call('HGET', p .. 'tu', pos)
    if tu then
      local a = string.find(tu, '\n', 1, true)
      local b = string.find(tu, '\n', a + 1, true)
      local typ = string.sub(tu, 1, a - 1)
      local idLen = tonumber(string.sub(tu, a + 1, b - 1))
      local id = string.sub(tu, b + 1, b + idLen)
      local user = string.sub(tu, b + idLen + 1)
      redis.call('ZREM', p .. 't:' .. typ, pos)
      redis.call('ZREM', p .. 'u:' .. user, pos)
      if redis.call('HGET', p .. 'ids', id) == pos then redis.call('HDEL', p .. 'ids', id) end
      markTrimmed(p .. 'tb', {'t:' .. typ, 'u:' .. user})
    end
    redis.call('ZREM', p .. 'all', pos)
    redis.call('HDEL', p .. 'ev', pos)
    redis.call('HDEL', p .. 'tu', pos)
  end
  if #victims > 0 then
    redis.call('HSET', meta, 'floor', victims[#victims])
    if namesKept then redis.call('HSET', meta, 'names', victims[#victims]) end
  end
end
return {added, fresh}
