-- Answer a GET /events query from the recent-events cache, if the cache can
-- answer it exactly. KEYS (one hash tag: one Cluster slot): [1] meta, [2]
-- tu, [3] ev, [4] tb (everTrimmed's filter, defined before this script,
-- recent_trimmed.go), then the index to read: all (no type, no user), u:<userId>
-- (a user, with or without types), or t:<type> for each type (types and
-- no user). ARGV: limit, min, max (ZRANGEBYLEX bounds of positions: '-' or
-- '[pos'; '+', '[pos' or '(pos'), userId ('' for any), scan budget, then
-- the event types (none for any), sorted and each once.
-- Returns {0, reason} when the answer is not (wholly) in the cache, else
-- {1, next, json...}: up to limit events newest first, and next, the
-- position of the last one when there is a next page ('' when not).
local limit = tonumber(ARGV[1])
local min, max, user = ARGV[2], ARGV[3], ARGV[4]
local budget = tonumber(ARGV[5])
local types = {}
for i = 6, #ARGV do types[#types + 1] = ARGV[i] end

local m = redis.call('HMGET', KEYS[1], 'epoch', 'complete', 'checkpoint', 'historyCheckpoint', 'floor', 'whole', 'names')
if not m[1] or m[2] ~= m[1] then return {0, 'rebuilding'} end
if tonumber(m[3] or '0') < tonumber(m[4] or '0') then return {0, 'behind'} end
-- Another master than the one that verified the cache (a failover, whose
-- replica may lack acknowledged events): MongoDB answers until the
-- projector has verified it (failover.go).
if redis.call('HGET', KEYS[1], 'replid') ~= replid() then return {0, 'unverified'} end
local floor = m[5]

-- Below the floor the cache is not complete: cut the range there and note
-- whether the query's own lower bound lies inside the cache. It is for a
-- user's or types' index that never lost an event, in a cache built from
-- the whole stream whose filter was kept at every trim: every event of
-- theirs is above the floor. A cache that trimmed nothing holds every
-- event if it is whole; if not, it was rebuilt from a stream that had
-- lost its oldest events (STREAM_MAX_AGE, STREAM_MAX_BYTES), which
-- MongoDB may still hold: it answers full pages only.
local whole = m[6] == m[1]
local bottomInside = true
if floor then
  if min == '-' or string.sub(min, 2) <= floor then
    min, bottomInside = '(' .. floor, false
    if whole and m[7] == floor and (user ~= '' or #types > 0) then
      local names = {}
      if user ~= '' then names[1] = 'u:' .. user
      else for i, t in ipairs(types) do names[i] = 't:' .. t end end
      bottomInside = not everTrimmed(KEYS[4], names)
    end
  end
elseif not whole then
  bottomInside = false
end
local want = limit + 1

local function top(key)
  return redis.call('ZREVRANGEBYLEX', key, max, min, 'LIMIT', 0, want)
end

-- parse reads the type and user of a cached position.
local function parse(tu)
  local a = string.find(tu, '\n', 1, true)
  local b = string.find(tu, '\n', a + 1, true)
  local idLen = tonumber(string.sub(tu, a + 1, b - 1))
  return string.sub(tu, 1, a - 1), string.sub(tu, b + idLen + 1)
end

-- scan pages through key newest first, keeping the positions keep accepts.
local function scan(key, keep)
  local out, hi, seen = {}, max, 0
  while #out < want do
    local page = redis.call('ZREVRANGEBYLEX', key, hi, min, 'LIMIT', 0, 256)
    if #page == 0 then return out end
    local tus = redis.call('HMGET', KEYS[2], unpack(page))
    for i, pos in ipairs(page) do
      if tus[i] then
        local typ, u = parse(tus[i])
        if keep(typ, u) and #out < want then out[#out + 1] = pos end
      end
    end
    seen = seen + #page
    if seen >= budget then return nil end
    hi = '(' .. page[#page]
  end
  return out
end

local got
if #types == 0 then
  got = top(KEYS[5])
elseif user == '' and #types == 1 then
  got = top(KEYS[5])
elseif user == '' then
  got = {}
  for i = 1, #types do
    for _, pos in ipairs(top(KEYS[4 + i])) do got[#got + 1] = pos end
  end
  table.sort(got, function(a, b) return a > b end)
  for i = #got, want + 1, -1 do got[i] = nil end
else
  local isType = {}
  for _, t in ipairs(types) do isType[t] = true end
  got = scan(KEYS[5], function(typ, _) return isType[typ] end)
  if not got then return {0, 'budget'} end
end

if #got < want and not bottomInside then return {0, 'outside'} end
local next = ''
if #got > limit then
  next = got[limit]
  got[want] = nil
end
if #got == 0 then return {1, next} end
local docs = redis.call('HMGET', KEYS[3], unpack(got))
local out = {1, next}
for _, d in ipairs(docs) do
  if not d then return {0, 'missing'} end
  out[#out + 1] = d
end
return out
