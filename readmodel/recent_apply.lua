-- Add events to Kiln's recent-events cache and trim it to its bound, in one
-- atomic step. Every key is passed in KEYS, all of one hash tag (one
-- Cluster slot): KEYS[1] meta (epoch, complete, floor, checkpoints), [2]
-- ids (event id -> position: the first copy of an id wins, as in MongoDB),
-- [3] all (sorted set of positions, all scores 0), [4] ev (position ->
-- JSON), [5] tu (position -> type, id, user for trimming), [6] tb (the
-- filter of index names that lost events, recent_trimmed.go), then index
-- keys t:<type> and u:<userId> (sorted sets of positions).
-- ARGV: max events, epoch, k, then the k index keys' names ('t:' .. type,
-- 'u:' .. userId) in the order of KEYS[7..6+k], then (position, eventType,
-- userId, id, JSON) quintuples. A position is the event's place in the
-- newest-first order: 12 hex digits of timestamp then 16 of stream
-- sequence, so the lexicographic order of positions is the (timestamp,
-- seq) order. Every event's own index keys must be among KEYS.
--
-- The cache holds every applied event whose position is above meta.floor
-- (the highest position ever trimmed): an event at or below the floor is
-- not added, so re-adding is idempotent under redelivery, crashes and two
-- projectors; its index names go into the filter, as those of every
-- event trimmed do (markTrimmed, defined before this script). Trimming
-- removes the oldest positions from every index; it stops at the first
-- victim whose index keys the caller did not pass, and
-- returns those keys' names, to be passed in a call with no events, which
-- trims on (the cache is complete above its floor meanwhile, only larger
-- than its bound). Returns {added, fresh, missing names...}; fresh is 1
-- when this call created the cache's epoch (a new or flushed Redis).
--
-- The effect is that of taking the events one by one in order; the writes
-- are grouped per key into variadic commands (one ZADD per sorted set, one
-- HSET per hash, chunked), since a command costs Redis far more than an
-- element: a replay sends thousands of events per call.
local meta, idsKey, allKey, evKey, tuKey, tbKey = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]
local maxEvents = tonumber(ARGV[1])
local fresh = redis.call('HSETNX', meta, 'epoch', ARGV[2])
-- A cache started here holds no acknowledged event yet: verified on this
-- master (failover.go; replid() is defined before this script).
if fresh == 1 then redis.call('HSET', meta, 'replid', replid()) end
local floor = redis.call('HGET', meta, 'floor')
-- The filter holds every name trimmed so far if the floor it was kept to
-- is the floor (false == false for a cache that never trimmed).
local namesKept = redis.call('HGET', meta, 'names') == floor
local oldFloor = floor
local keyOf = {}
local nk = tonumber(ARGV[3])
for i = 1, nk do keyOf[ARGV[3 + i]] = KEYS[6 + i] end
local firstArg = 4 + nk

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

-- The index names that lost an event (left out or trimmed), each once.
local lost, nlost, isLost = {}, 0, {}
local function lose(name)
  if not isLost[name] then
    isLost[name] = true
    nlost = nlost + 1
    lost[nlost] = name
  end
end

-- The events above the floor, and their ids' stored positions.
local cand, ids, nc = {}, {}, 0
for i = firstArg, #ARGV, 5 do
  if not floor or ARGV[i] > floor then
    nc = nc + 1
    cand[nc] = i
    ids[nc] = ARGV[i + 3]
  else
    lose('t:' .. ARGV[i + 1])
    lose('u:' .. ARGV[i + 2])
  end
end
local stored = {}
for i = 1, nc, chunk do
  local part = redis.call('HMGET', idsKey, unpack(ids, i, math.min(i + chunk - 1, nc)))
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
  if nn > 0 then call('HSET', idsKey, newIds) end
  added = call('ZADD', allKey, all)
  for name, args in pairs(zsets) do call('ZADD', keyOf[name], args) end
  call('HSET', evKey, ev)
  call('HSET', tuKey, tu)
end

local missing, nmiss, isMissing = {}, 0, {}
local n = redis.call('ZCARD', allKey)
if n > maxEvents then
  local victims = redis.call('ZRANGEBYLEX', allKey, '-', '+', 'LIMIT', 0, n - maxEvents)
  local nvict = #victims
  local rem, remLen, vids, vpos, nv = {}, {}, {}, {}, 0
  local function drop(k, pos)
    local l = rem[k]
    local m = 0
    if l then m = remLen[k] else l = {}; rem[k] = l end
    l[m + 1] = pos
    remLen[k] = m + 1
  end
  local function need(name)
    if keyOf[name] then return true end
    if not isMissing[name] then
      isMissing[name] = true
      nmiss = nmiss + 1
      missing[nmiss] = name
    end
    return false
  end
  local upTo = nvict -- victims trimmed now: those before the first with a key not passed
  for i = 1, nvict, chunk do
    local part = redis.call('HMGET', tuKey, unpack(victims, i, math.min(i + chunk - 1, nvict)))
    for j = 1, #part do
      local pos, v = victims[i + j - 1], part[j]
      if v then
        local a = string.find(v, '\n', 1, true)
        local b = string.find(v, '\n', a + 1, true)
        local typ = string.sub(v, 1, a - 1)
        local idLen = tonumber(string.sub(v, a + 1, b - 1))
        local id = string.sub(v, b + 1, b + idLen)
        local user = string.sub(v, b + idLen + 1)
        local okT, okU = need('t:' .. typ), need('u:' .. user)
        if upTo == nvict and (not okT or not okU) then upTo = i + j - 2 end
        if i + j - 1 <= upTo then
          drop('t:' .. typ, pos)
          drop('u:' .. user, pos)
          lose('t:' .. typ)
          lose('u:' .. user)
          nv = nv + 1
          vids[nv] = id
          vpos[nv] = pos
        end
      end
    end
  end
  for i = nvict, upTo + 1, -1 do victims[i] = nil end
  nvict = upTo
  for name, members in pairs(rem) do call('ZREM', keyOf[name], members) end
  local gone, ng = {}, 0
  for i = 1, nv, chunk do
    local part = redis.call('HMGET', idsKey, unpack(vids, i, math.min(i + chunk - 1, nv)))
    for j = 1, #part do
      if part[j] == vpos[i + j - 1] then
        ng = ng + 1
        gone[ng] = vids[i + j - 1]
      end
    end
  end
  if ng > 0 then call('HDEL', idsKey, gone) end
  if nvict > 0 then
    call('ZREM', allKey, victims)
    call('HDEL', evKey, victims)
    call('HDEL', tuKey, victims)
    floor = victims[nvict]
  end
end
-- The filter first, then the floor, and the floor the filter is kept to
-- ('names') if it was before: a cache whose two differ was trimmed by a
-- writer that keeps no filter, and its filter is not believed again.
if nlost > 0 then markTrimmed(tbKey, lost) end
if floor ~= oldFloor then
  redis.call('HSET', meta, 'floor', floor)
  if namesKept then redis.call('HSET', meta, 'names', floor) end
end
local out = {added, fresh}
for i = 1, nmiss do out[2 + i] = missing[i] end
return out
