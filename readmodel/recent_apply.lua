-- Add events to Kiln's recent-events cache and trim it to its bound, in one
-- atomic step. ARGV: prefix, max events, epoch, then (position, eventType,
-- userId, id, JSON) quintuples. A position is the event's place in the
-- newest-first order: 12 hex digits of timestamp then 16 of stream sequence,
-- so the lexicographic order of positions is the (timestamp, seq) order.
--
-- Keys under <prefix>recent: — all, t:<type>, u:<userId> (sorted sets of
-- positions, all scores 0), ev (position -> JSON), tu (position -> type,
-- id, user for trimming), ids (event id -> position: the first copy of an id
-- wins, as in MongoDB), meta (epoch, complete, floor, checkpoints).
--
-- The cache holds every applied event whose position is above meta.floor
-- (the highest position ever trimmed): an event at or below the floor is
-- not added, so re-adding is idempotent under redelivery, crashes and two
-- projectors. Returns {added, fresh}; fresh is 1 when this call created the
-- cache's epoch (a new or flushed Redis).
--
-- The effect is that of taking the events one by one in order; the writes
-- are grouped per key into variadic commands (one ZADD per sorted set, one
-- HSET per hash, chunked), since a command costs Redis far more than an
-- element: a replay sends thousands of events per call.
local p = ARGV[1] .. 'recent:'
local maxEvents = tonumber(ARGV[2])
local meta = p .. 'meta'
local fresh = redis.call('HSETNX', meta, 'epoch', ARGV[3])
local floor = redis.call('HGET', meta, 'floor')

-- Lua's unpack is bounded by its stack: commands get at most `chunk`
-- arguments after the key.
local chunk = 2000
local function call(cmd, key, args)
  local n = 0
  for i = 1, #args, chunk do
    n = n + redis.call(cmd, key, unpack(args, i, math.min(i + chunk - 1, #args)))
  end
  return n
end
-- Lists are filled with explicit lengths: Lua 5.1's # is a binary search,
-- and a replay's call holds thousands of events.

-- The events above the floor, and their ids' stored positions.
local cand, ids, nc = {}, {}, 0
for i = 4, #ARGV, 5 do
  if not floor or ARGV[i] > floor then
    nc = nc + 1
    cand[nc] = i
    ids[nc] = ARGV[i + 3]
  end
end
local stored = {}
for i = 1, nc, chunk do
  local part = redis.call('HMGET', p .. 'ids', unpack(ids, i, math.min(i + chunk - 1, nc)))
  for j = 1, #part do stored[i + j - 1] = part[j] end
end

-- An id keeps the position it was first stored at (by an earlier call or
-- earlier in this one); a later copy at another position is not cached.
local first, newIds, nn = {}, {}, 0
local all, ev, tu, na = {}, {}, {}, 0
local zsets, zlen = {}, {}
local function push(k, pos)
  local l = zsets[k]
  local n = 0
  if l then n = zlen[k] else l = {}; zsets[k] = l end
  l[n + 1] = 0
  l[n + 2] = pos
  zlen[k] = n + 2
end
for k = 1, nc do
  local i = cand[k]
  local pos, typ, user, id = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3]
  local have = first[id] or stored[k]
  if not have then
    first[id] = pos
    newIds[nn + 1] = id
    newIds[nn + 2] = pos
    nn = nn + 2
  end
  if not have or have == pos then
    all[na + 1] = 0
    all[na + 2] = pos
    ev[na + 1] = pos
    ev[na + 2] = ARGV[i + 4]
    tu[na + 1] = pos
    tu[na + 2] = typ .. '\n' .. #id .. '\n' .. id .. user
    na = na + 2
    push('t:' .. typ, pos)
    push('u:' .. user, pos)
  end
end

local added = 0
if na > 0 then
  if nn > 0 then call('HSET', p .. 'ids', newIds) end
  added = call('ZADD', p .. 'all', all)
  for key, args in pairs(zsets) do call('ZADD', p .. key, args) end
  call('HSET', p .. 'ev', ev)
  call('HSET', p .. 'tu', tu)
end

local n = redis.call('ZCARD', p .. 'all')
if n > maxEvents then
  local victims = redis.call('ZRANGEBYLEX', p .. 'all', '-', '+', 'LIMIT', 0, n - maxEvents)
  local nvict = #victims
  local rem, remLen, vids, vpos, nv = {}, {}, {}, {}, 0
  local function drop(k, pos)
    local l = rem[k]
    local m = 0
    if l then m = remLen[k] else l = {}; rem[k] = l end
    l[m + 1] = pos
    remLen[k] = m + 1
  end
  for i = 1, nvict, chunk do
    local part = redis.call('HMGET', p .. 'tu', unpack(victims, i, math.min(i + chunk - 1, nvict)))
    for j = 1, #part do
      local pos, v = victims[i + j - 1], part[j]
      if v then
        local a = string.find(v, '\n', 1, true)
        local b = string.find(v, '\n', a + 1, true)
        local typ = string.sub(v, 1, a - 1)
        local idLen = tonumber(string.sub(v, a + 1, b - 1))
        local id = string.sub(v, b + 1, b + idLen)
        local user = string.sub(v, b + idLen + 1)
        drop('t:' .. typ, pos)
        drop('u:' .. user, pos)
        nv = nv + 1
        vids[nv] = id
        vpos[nv] = pos
      end
    end
  end
  for key, members in pairs(rem) do call('ZREM', p .. key, members) end
  local gone, ng = {}, 0
  for i = 1, nv, chunk do
    local part = redis.call('HMGET', p .. 'ids', unpack(vids, i, math.min(i + chunk - 1, nv)))
    for j = 1, #part do
      if part[j] == vpos[i + j - 1] then
        ng = ng + 1
        gone[ng] = vids[i + j - 1]
      end
    end
  end
  if ng > 0 then call('HDEL', p .. 'ids', gone) end
  if nvict > 0 then
    call('ZREM', p .. 'all', victims)
    call('HDEL', p .. 'ev', victims)
    call('HDEL', p .. 'tu', victims)
    redis.call('HSET', meta, 'floor', victims[nvict])
  end
end
return {added, fresh}
