package redis

// The Lua scripts. Each runs atomically in Redis and touches only the keys
// it is given, which for the swarm scripts all carry the swarm's hash tag,
// so they run unchanged on one server and on a cluster.
//
// A swarm is three keys (see swarmKeys):
//
//	P{hex}   hash: one field per peer_id, its record; and the swarm's
//	         counts, "c" (complete), "i" (incomplete), "d" (downloaded).
//	         The swarm exists while "d" does.
//	P{hex}4  sorted set of the swarm's IPv4 peers, scored by last
//	         announce (Unix seconds), plus 2^32 for a seeder: leechers
//	         come first, each half oldest first. A member is the peer_id,
//	         the packed address and port, and in a private store the user
//	         id: what picking a peer needs, without a look-up per peer.
//	P{hex}6  the same for IPv6.
//
// A record is one byte of flags (1: in IPv4, 2: IPv4 seeder, 4: in IPv6,
// 8: IPv6 seeder, 16: counted as a download), then the packed IPv4
// address and port if in IPv4, the packed IPv6 address and port if in
// IPv6, then, in a private store, the user id (4 bytes). One peer_id has
// one record whatever its families, so a dual-stacked peer's two
// addresses are found, counted and skipped together.

// common is the part of the swarm scripts both use.
const common = `
local SEED = 4294967296
local band = bit.band

-- decode splits a record into its flags, IPv4 and IPv6 addresses and uid.
local function decode(rec)
  if not rec then return 0, nil, nil, '' end
  local f = string.byte(rec, 1)
  local p = 2
  local a4, a6
  if band(f, 1) ~= 0 then a4 = string.sub(rec, p, p + 5); p = p + 6 end
  if band(f, 4) ~= 0 then a6 = string.sub(rec, p, p + 17); p = p + 18 end
  return f, a4, a6, string.sub(rec, p)
end

local function encode(f, a4, a6, uid)
  local rec = string.char(f)
  if band(f, 1) ~= 0 then rec = rec .. a4 end
  if band(f, 4) ~= 0 then rec = rec .. a6 end
  return rec .. uid
end

-- contrib is what a record adds to the counts: seeders, leechers. A
-- dual-stacked peer is one peer, in the role of its IPv4 record.
-- total adds to the store's totals (a hash: "n" swarms, "s" seeders, "l"
-- leechers), if it keeps them: on one server, not on a cluster, where they
-- would be on another slot than the swarm.
local function total(key, dn, ds, dl)
  if not key then return end
  if dn ~= 0 then redis.call('HINCRBY', key, 'n', dn) end
  if ds ~= 0 then redis.call('HINCRBY', key, 's', ds) end
  if dl ~= 0 then redis.call('HINCRBY', key, 'l', dl) end
end

-- member is a peer's member of a family's set.
local function member(pid, a, uid) return pid .. a .. uid end

local function contrib(f, dual)
  local in4, in6 = band(f, 1) ~= 0, band(f, 4) ~= 0
  local s4, s6 = band(f, 2) ~= 0, band(f, 8) ~= 0
  if dual then
    if in4 then if s4 then return 1, 0 end return 0, 1 end
    if in6 then if s6 then return 1, 0 end return 0, 1 end
    return 0, 0
  end
  local s, l = 0, 0
  if in4 then if s4 then s = s + 1 else l = l + 1 end end
  if in6 then if s6 then s = s + 1 else l = l + 1 end end
  return s, l
end
`

// announceScript applies one announce and picks the peers to hand out.
//
// KEYS: the swarm's hash (its sets are the hash's key and "4" or "6"),
// and, on a single server, the swarm's expiry index and the store's
// totals.
// ARGV: one string, which saves the caller an allocation per argument:
// peer_id (20 bytes), family ("4" or "6"), seeder ("1" or "0"), event
// (a byte: bittorrent.Event), options (a byte: 1 dual-stacked, 2
// respect_af, 4 purge an emptied swarm, 8 hand out peer_ids, 16 a private
// store), the preferred prefix length for the family (a byte, 0: none),
// want (2 bytes), two random numbers (4 bytes each), the info_hash (20
// bytes, the index's member), the user id (4 bytes), the packed address
// and port, then in decimal the time (Unix seconds) and, after a space,
// the peer's score in its set (the time, plus 2^32 for a seeder).
//
// Returns one string (see reply): change, whether the swarm must be put
// in the expiry index (it had no peers, and no index key was given), the
// counts, packed IPv4 peers, their ids, packed IPv6 peers, their ids, and
// IPv4 and IPv6 members for the caller to take peers from (see window).
const announceScript = common + `
local function reply(change, index, c, i, d, p4, i4, p6, i6, r4, r6)
  return struct.pack('>BBI4I4I4I4I4I4I4I4I4', change, index, c, i, d, #p4, #i4, #p6, #i6, #r4, #r6) ..
    p4 .. i4 .. p6 .. i6 .. r4 .. r6
end
local function u32(s, k)
  local b1, b2, b3, b4 = string.byte(s, k, k + 3)
  return ((b1 * 256 + b2) * 256 + b3) * 256 + b4
end

local h, a1 = KEYS[1], ARGV[1]
local pid, fam, seeder = string.sub(a1, 1, 20), string.sub(a1, 21, 21), string.sub(a1, 22, 22) == '1'
local event, opts, bits = string.byte(a1, 23, 25)
local want = string.byte(a1, 26) * 256 + string.byte(a1, 27)
local rnd1, rnd2, ih = u32(a1, 28), u32(a1, 32), string.sub(a1, 36, 55)
local uid = ''
if band(opts, 16) ~= 0 then uid = string.sub(a1, 56, 59) end
local v4 = fam == '4'
local alen = 6
if not v4 then alen = 18 end
local addr = string.sub(a1, 60, 59 + alen)
local now, score = string.match(a1, '^(%d+) (%d+)$', 60 + alen)
local dual, respectAF = band(opts, 1) ~= 0, band(opts, 2) ~= 0
local purgeEmpty, wantIDs = band(opts, 4) ~= 0, band(opts, 8) ~= 0
local z4, z6 = h .. '4', h .. '6'
local IN, SD = 1, 2
local zf, zo = z4, z6
if not v4 then IN, SD, zf, zo = 4, 8, z6, z4 end
local indexKey, totalsKey = KEYS[2], KEYS[3]

local r = redis.call('HMGET', h, pid, 'c', 'i', 'd')
local rec, c, i, d = r[1], tonumber(r[2]) or 0, tonumber(r[3]) or 0, r[4]
local exists = d ~= false
d = tonumber(d) or 0
local f0, a4, a6, ruid = decode(rec)
local had = band(f0, IN) ~= 0
local change = 0
if had and band(f0, SD) ~= 0 then change = change + 4 end -- SeederBefore
local s0, l0 = contrib(f0, dual)

if event == 3 then -- Stopped
  if not had then return reply(change, 0, c, i, d, '', '', '', '', '', '') end
  local f1 = f0 - band(f0, IN + SD)
  if v4 then
    redis.call('ZREM', zf, member(pid, a4, ruid))
    a4 = nil
  else
    redis.call('ZREM', zf, member(pid, a6, ruid))
    a6 = nil
  end
  local s1, l1 = contrib(f1, dual)
  c, i = c + s1 - s0, i + l1 - l0
  change = change + 2 -- PeerRemoved
  if purgeEmpty and c + i == 0 then
    redis.call('DEL', h, z4, z6)
    total(totalsKey, -1, s1 - s0, l1 - l0)
    return reply(change + 64, 0, c, i, d, '', '', '', '', '', '') -- SwarmRemoved
  end
  total(totalsKey, 0, s1 - s0, l1 - l0)
  if band(f1, 5) == 0 then
    redis.call('HDEL', h, pid)
    redis.call('HSET', h, 'c', c, 'i', i)
  else
    redis.call('HSET', h, pid, encode(f1, a4, a6, ruid), 'c', c, 'i', i)
  end
  return reply(change, 0, c, i, d, '', '', '', '', '', '')
end

local peerless = c + i == 0
if not exists then change = change + 32 end -- SwarmAdded
if not had then change = change + 1 end -- PeerAdded
local f1 = f0 - band(f0, SD)
if not had then f1 = f1 + IN end
if seeder then f1, change = f1 + SD, change + 8 end -- SeederAfter
local was = nil
if had then if v4 then was = member(pid, a4, ruid) else was = member(pid, a6, ruid) end end
if v4 then a4 = addr else a6 = addr end
if event == 1 and band(f1, 16) == 0 then -- Completed, the peer's first
  f1, d, change = f1 + 16, d + 1, change + 16 -- Snatched
end
local s1, l1 = contrib(f1, dual)
c, i = c + s1 - s0, i + l1 - l0
if exists then total(totalsKey, 0, s1 - s0, l1 - l0) else total(totalsKey, 1, s1 - s0, l1 - l0) end
local m = member(pid, addr, uid)
if was and was ~= m then redis.call('ZREM', zf, was) end
redis.call('ZADD', zf, score, m)
-- Most announces are a peer saying it is still there: its record, and so
-- the counts (which follow the records' flags), stay as they were, and
-- only its score moves.
local rec1 = encode(f1, a4, a6, uid)
if rec1 ~= rec then
  redis.call('HSET', h, pid, rec1, 'c', c, 'i', i, 'd', d)
end
local index = 0
if peerless then
  if indexKey then redis.call('ZADD', indexKey, 'NX', now, ih) else index = 1 end
end
if want <= 0 then return reply(change, index, c, i, d, '', '', '', '', '', '') end

-- Peer selection: from a random rank on, as the memory store walks its
-- lists; a seeder gets leechers only (the ranks below the first seeder's).
local out = {{}, {}, {}, {}} -- IPv4 peers, their ids, IPv6 peers, their ids
local n = 0
local checkUID = uid ~= '' and uid ~= '\0\0\0\0'

-- accept returns the id and packed address of candidate member m of
-- family fam4, or nil if the announcer must not get it. crec is its
-- record, looked up only where needed (see walk).
local function accept(m, crec, fam4, other)
  local id = string.sub(m, 1, 20)
  if id == pid then return nil end
  local alen = 26
  if not fam4 then alen = 38 end
  if checkUID and string.sub(m, alen + 1) == uid then return nil end
  -- A dual-stacked peer was offered by the announcer's own family.
  if crec and band(string.byte(crec, 1), IN) ~= 0 then return nil end
  return id, string.sub(m, 21, alen)
end

local function put(fam4, id, a)
  local k = 1
  if not fam4 then k = 3 end
  table.insert(out[k], a)
  if wantIDs then table.insert(out[k + 1], id) end
  n = n + 1
end

-- candidates calls fn with the members of ranks [0, span) of z, and with
-- their records if records is set, from rank start on, wrapping, up to
-- limit of them, until fn returns true.
local function candidates(z, span, start, limit, records, fn)
  local seen = 0
  while seen < limit do
    local pos = (start + seen) % span
    -- As many as are wanted, and one more for the announcer itself.
    local cnt = math.min(limit - seen, span - pos, want - n + 1)
    local ms = redis.call('ZRANGE', z, pos, pos + cnt - 1)
    if #ms == 0 then return end
    local recs = {}
    if records then
      local ids = {}
      for k = 1, #ms do ids[k] = string.sub(ms[k], 1, 20) end
      recs = redis.call('HMGET', h, unpack(ids))
    end
    for k = 1, #ms do
      if fn(ms[k], recs[k] or nil) then return end
    end
    seen = seen + cnt
  end
end

local function span(z)
  if seeder then return redis.call('ZCOUNT', z, '-inf', '(4294967296') end
  return redis.call('ZCARD', z)
end

local function sameSubnet(a, b, nbits)
  local full = math.floor(nbits / 8)
  if string.sub(a, 1, full) ~= string.sub(b, 1, full) then return false end
  local rest = nbits % 8
  if rest == 0 then return true end
  local div = 2 ^ (8 - rest)
  return math.floor(string.byte(a, full + 1) / div) == math.floor(string.byte(b, full + 1) / div)
end

local function walk(z, fam4, other, rnd, prefer)
  local total = span(z)
  if total == 0 or n >= want then return end
  local start = rnd % total
  -- Only a dual-stacked peer of the other family needs its record: to
  -- skip it if it is in the announcer's family too.
  local records = other and dual
  if prefer == 0 then
    candidates(z, total, start, total, records, function(m, crec)
      local id, a = accept(m, crec, fam4, other)
      if id then put(fam4, id, a) end
      return n >= want
    end)
    return
  end
  -- Preferred subnet: the subnet's peers among the first 1000 examined
  -- come first, then the others.
  local alen = 4
  if not fam4 then alen = 16 end
  local mine = string.sub(addr, 1, alen)
  local rest = {}
  candidates(z, total, start, math.min(total, 1000), records, function(m, crec)
    local id, a = accept(m, crec, fam4, other)
    if id then
      if sameSubnet(a, mine, prefer) then
        put(fam4, id, a)
      else
        table.insert(rest, {id, a})
      end
    end
    return n >= want
  end)
  for k = 1, #rest do
    if n >= want then break end
    put(fam4, rest[k][1], rest[k][2])
  end
end

-- window returns the members of a window of up to cnt ranks of z's first
-- total, from a random one on, wrapping, concatenated.
local function window(z, total, cnt, rnd)
  cnt = math.min(cnt, total)
  local start = rnd % total
  local ms = table.concat(redis.call('ZRANGE', z, start, math.min(total, start + cnt) - 1))
  if start + cnt > total then
    ms = ms .. table.concat(redis.call('ZRANGE', z, 0, start + cnt - total - 1))
  end
  return ms
end

-- The usual case, a public store without a preferred subnet, is left to
-- the caller: it gets windows of members, one more than wanted for the
-- announcer itself, and takes the peers out of them. Lua's time per peer
-- is what an announce costs Redis most, and this way no Lua touches a
-- peer: only ZRANGE and table.concat, which are C.
local raw = {'', ''}
local k = 1
if not v4 then k = 2 end
if uid == '' and bits == 0 then
  local total = span(zf)
  if total > 0 then
    raw[k] = window(zf, total, want + 1, rnd1)
    n = total
    if not seeder then n = total - 1 end -- the announcer is in the window's set
    n = math.min(want, n)
  end
else
  walk(zf, v4, false, rnd1, bits)
end
if not respectAF and n < want then
  if uid == '' and not dual then
    local total = span(zo)
    if total > 0 then raw[3 - k] = window(zo, total, want - n + 1, rnd2) end
  else
    walk(zo, not v4, true, rnd2, 0)
  end
end
return reply(change, index, c, i, d,
  table.concat(out[1]), table.concat(out[2]), table.concat(out[3]), table.concat(out[4]), raw[1], raw[2])
`

// purgeScript removes a swarm's peers last seen before a time, at most a
// batch of them.
//
// KEYS: the swarm's hash, IPv4 set, IPv6 set, and, on a single server,
// the store's totals.
// ARGV: the cutoff (Unix seconds: peers seen before it go), whether to
// remove a swarm left without peers ("1"/"0"), the most peers to remove,
// whether peers are dual-stacked ("1"/"0").
//
// Returns IPv4 peers removed, the seeders among them, the same for IPv6,
// whether the swarm was left without peers (1) and whether it was removed
// (1), the Unix time of its oldest remaining peer (-1: none), and whether
// expired peers remain (1: the batch was full).
const purgeScript = common + `
local h, z4, z6 = KEYS[1], KEYS[2], KEYS[3]
local cutoff, purgeEmpty = tonumber(ARGV[1]), ARGV[2] == '1'
local budget, dual = tonumber(ARGV[3]), ARGV[4] == '1'
local r = redis.call('HMGET', h, 'c', 'i', 'd')
if not r[3] then return {0, 0, 0, 0, 0, 0, -1, 0} end
local c, i = tonumber(r[1]) or 0, tonumber(r[2]) or 0
local c0, i0 = c, i
local had = c + i > 0
local res = {0, 0, 0, 0}
local left = budget
for k, z in ipairs({z4, z6}) do
  local IN, SD = 1, 2
  if k == 2 then IN, SD = 4, 8 end
  for role = 0, 1 do
    if left > 0 then
      local ms = redis.call('ZRANGEBYSCORE', z, role * SEED, '(' .. (role * SEED + cutoff), 'LIMIT', 0, left)
      if #ms > 0 then
        local ids = {}
        for j = 1, #ms do ids[j] = string.sub(ms[j], 1, 20) end
        local recs = redis.call('HMGET', h, unpack(ids))
        for j = 1, #ids do
          local f0, a4, a6, uid = decode(recs[j])
          local s0, l0 = contrib(f0, dual)
          local f1 = f0 - band(f0, IN + SD)
          local s1, l1 = contrib(f1, dual)
          c, i = c + s1 - s0, i + l1 - l0
          if band(f1, 5) == 0 then
            redis.call('HDEL', h, ids[j])
          elseif recs[j] then
            redis.call('HSET', h, ids[j], encode(f1, a4, a6, uid))
          end
          res[2 * k - 1] = res[2 * k - 1] + 1
          if role == 1 then res[2 * k] = res[2 * k] + 1 end
        end
        redis.call('ZREM', z, unpack(ms))
        left = left - #ms
      end
    end
  end
end
local emptied, removed = 0, 0
if c + i == 0 then
  if had then emptied = 1 end
  if purgeEmpty then
    redis.call('DEL', h, z4, z6)
    total(KEYS[4], -1, c - c0, i - i0)
    return {res[1], res[2], res[3], res[4], emptied, 1, -1, 0}
  end
end
redis.call('HSET', h, 'c', c, 'i', i)
total(KEYS[4], 0, c - c0, i - i0)
local oldest = -1
for _, z in ipairs({z4, z6}) do
  for role = 0, 1 do
    local first = redis.call('ZRANGEBYSCORE', z, role * SEED, '(' .. ((role + 1) * SEED), 'WITHSCORES', 'LIMIT', 0, 1)
    if #first == 2 then
      local t = tonumber(first[2]) - role * SEED
      if oldest < 0 or t < oldest then oldest = t end
    end
  end
end
local more = 0
if left == 0 then more = 1 end
return {res[1], res[2], res[3], res[4], emptied, removed, oldest, more}
`

// claimScript takes swarms out of an expiry index for one reaper: each
// member whose score is still the one the reaper read is removed and
// returned; one another reaper took or re-scored is left alone.
//
// KEYS: the index. ARGV: member, score, member, score, ...
const claimScript = `
local out = {}
for k = 1, #ARGV, 2 do
  local s = redis.call('ZSCORE', KEYS[1], ARGV[k])
  if s and tonumber(s) == tonumber(ARGV[k + 1]) then
    redis.call('ZREM', KEYS[1], ARGV[k])
    table.insert(out, ARGV[k])
  end
end
return out
`
