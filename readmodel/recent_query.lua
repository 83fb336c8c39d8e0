-- Answer a GET /events query from the recent-events cache, if the cache can
-- answer it exactly. ARGV: prefix ('' for the live generation), limit, min, max (ZRANGEBYLEX bounds of
-- positions: '-' or '[pos'; '+', '[pos' or '(pos'), userId ('' for any),
-- scan budget, then the event types (none for any).
-- Returns {0, reason} when the answer is not (wholly) in the cache, else
-- {1, next, json...}: up to limit events newest first, and next, the
-- position of the last one when there is a next page ('' when not).
-- An empty prefix follows the live generation pointer (as PrefixFor does),
-- saving the reader a round trip.
local prefix = ARGV[1]
if prefix == '' then
  local gen = redis.call('GET', 'kiln:generation')
  if not gen or gen == '0' then prefix = 'kiln:' else prefix = 'kiln:g' .. gen .. ':' end
end
local p = prefix .. 'recent:'
local limit = tonumber(ARGV[2])
local min, max, user = ARGV[3], ARGV[4], ARGV[5]
local budget = tonumber(ARGV[6])
local types = {}
for i = 7, #ARGV do types[#types + 1] = ARGV[i] end

local m = redis.call('HMGET', p .. 'meta', 'epoch', 'complete', 'checkpoint', 'historyCheckpoint', 'floor')
if not m[1] or m[2] ~= m[1] then return {0, 'rebuilding'} end
if tonumber(m[3] or '0') < tonumber(m[4] or '0') then return {0, 'behind'} end
local floor = m[5]

-- Below the floor the cache is not complete: cut the range there and note
-- whether the query's own lower bound lies inside the cache.
local bottomInside = true
if floor then
  if min == '-' or string.sub(min, 2) <= floor then
    min, bottomInside = '(' .. floor, false
  end
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
    local tus = redis.call('HMGET', p .. 'tu', unpack(page))
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
  got = top(p .. (user == '' and 'all' or ('u:' .. user)))
elseif user == '' and #types == 1 then
  got = top(p .. 't:' .. types[1])
elseif user == '' then
  got = {}
  for _, t in ipairs(types) do
    for _, pos in ipairs(top(p .. 't:' .. t)) do got[#got + 1] = pos end
  end
  table.sort(got, function(a, b) return a > b end)
  for i = #got, want + 1, -1 do got[i] = nil end
else
  local isType = {}
  for _, t in ipairs(types) do isType[t] = true end
  got = scan(p .. 'u:' .. user, function(typ, _) return isType[typ] end)
  if not got then return {0, 'budget'} end
end

if #got < want and not bottomInside then return {0, 'outside'} end
local next = ''
if #got > limit then
  next = got[limit]
  got[want] = nil
end
if #got == 0 then return {1, next} end
local docs = redis.call('HMGET', p .. 'ev', unpack(got))
local out = {1, next}
for _, d in ipairs(docs) do
  if not d then return {0, 'missing'} end
  out[#out + 1] = d
end
return out
