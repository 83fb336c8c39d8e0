package readmodel

import (
	"bytes"
	"crypto/sha1"
	"encoding/binary"
)

// The recent-events cache is complete above its floor for every query. It
// is complete further down for one index (a user's events, a type's) when
// none of the index's events was ever trimmed, nor left out for being at
// or below the floor: it then holds every event of that user or type the
// history holds, and answers "these are all" (or "there are none", for a
// user who has no events yet) without asking MongoDB — which, on FerretDB,
// would scan the whole history to say so.
//
// Which indexes lost events is kept in a Bloom filter (key "tb", a bitmap
// of trimmedFilterBits bits, k = 5), since the number of users is
// unbounded: a name the filter has never seen is certainly complete; one
// it may have seen is answered above the floor only, as before. Its false
// positives (about 1 % at five million names trimmed) cost a MongoDB read,
// never a wrong answer. The bits of a name are five 32-bit words of the
// SHA-1 of its index key name ("u:" + userId or "t:" + type) modulo the
// size: the Lua below (redis.sha1hex) and trimmedBits compute the same.
//
// The answer is trusted only while the cache's meta hash says so: "whole"
// is its epoch when the cache was built from the stream's first event with
// no event ever removed from the stream (MarkCompleteOn), and "names" is
// the floor the filter was last updated at: a trim by a writer that does
// not keep the filter (a Kiln before it, in a rolling upgrade) moves the
// floor without it, and the filter is no longer believed.

// trimmedFilterBits is the size of the filter: 8 MiB of Redis memory, once
// the cache has trimmed anything.
const trimmedFilterBits = 1 << 26

// trimmedHashes is how many bits a name sets (words of its SHA-1).
const trimmedHashes = 5

// trimmedLua defines markTrimmed(key, names) (names: a table of index key
// names to set, each once) and everTrimmed(key, names) (true if any of
// names may have lost events). A server without BITFIELD (the in-process
// miniredis of a standalone without redis-server) or BITFIELD_RO (Redis
// before 6.2) gets SETBIT and GETBIT, a command a bit.
const trimmedLua = `
local trimmedBits = 67108864
local function trimmedOffsets(name, ops, verb)
  local h = redis.sha1hex(name)
  for i = 0, 4 do
    local off = tonumber(string.sub(h, 8 * i + 1, 8 * i + 8), 16) % trimmedBits
    ops[#ops + 1] = verb
    ops[#ops + 1] = 'u1'
    ops[#ops + 1] = off
    if verb == 'SET' then ops[#ops + 1] = 1 end
  end
end
local function setTrimmed(key, ops)
  local r = redis.pcall('BITFIELD', key, unpack(ops))
  if type(r) == 'table' and r.err then
    for i = 3, #ops, 4 do redis.call('SETBIT', key, ops[i], 1) end
  end
end
local function markTrimmed(key, names)
  local ops = {}
  for _, name in ipairs(names) do
    trimmedOffsets(name, ops, 'SET')
    if #ops >= 4000 then
      setTrimmed(key, ops)
      ops = {}
    end
  end
  if #ops > 0 then setTrimmed(key, ops) end
end
local function everTrimmed(key, names)
  for _, name in ipairs(names) do
    local ops = {}
    trimmedOffsets(name, ops, 'GET')
    local bits = redis.pcall('BITFIELD_RO', key, unpack(ops))
    if type(bits) == 'table' and bits.err then
      bits = {}
      for i = 3, #ops, 3 do bits[#bits + 1] = redis.call('GETBIT', key, ops[i]) end
    end
    local all = true
    for _, b in ipairs(bits) do if b == 0 then all = false end end
    if all then return true end
  end
  return false
end
`

// trimmedFilter is the filter built in memory (RecentBuild), bit for bit
// what markTrimmed leaves in Redis for the same names.
type trimmedFilter struct {
	bits []byte // nil until a name is marked
}

func (f *trimmedFilter) mark(name string) {
	if f.bits == nil {
		f.bits = make([]byte, trimmedFilterBits/8)
	}
	sum := sha1.Sum([]byte(name))
	for i := range trimmedHashes {
		off := binary.BigEndian.Uint32(sum[4*i:]) % trimmedFilterBits
		f.bits[off/8] |= 0x80 >> (off % 8) // SETBIT's order: bit 0 is the first byte's high bit
	}
}

// value is the bitmap as Redis stores it: up to its last byte set ("": no
// name marked).
func (f *trimmedFilter) value() []byte {
	return bytes.TrimRight(f.bits, "\x00")
}
