"""Lua for unit caps and reservations (rules: :mod:`server.store.units`).

An offer with a unit cap has one hash, ``units:<offer_id>``: ``sold`` (units discounted by
committed transactions, net of cancels), ``s:<store_id>`` (the same per store, offers with
``units_per_store`` only) and one field per reservation, ``r:<issue_id>:<member_id>`` =
``"<member_id>|<units still held>|<until_us>"``. Availability skips reservations whose
``until_us`` has passed, so nothing sweeps them.

:data:`UNIT_PRELUDE` joins the shared prelude (:mod:`server.store.redis.scripts`): the
``commit`` and ``cancel`` scripts run :func:`check_units`/:func:`apply_units` on a block of
unit ops after their ledger entry. ``until_us`` stays a string in Lua (its numbers are
doubles and would print in exponent form).
"""

from __future__ import annotations

UNIT_PRELUDE = r"""
-- live reservations of a units hash at now_us: units held for others, and the holder's
-- own as {until number, field, units, member, until string}
local function live_reservations(key, holder, now_us)
  local others, mine = 0, {}
  local all = redis.call('HGETALL', key)
  for j = 1, #all, 2 do
    if string.sub(all[j], 1, 2) == 'r:' then
      local m, u, t = string.match(all[j + 1], '^(.*)|(%d+)|(%d+)$')
      local un, tn = tonumber(u), tonumber(t)
      if un > 0 and tn > now_us then
        if m == holder then
          mine[#mine + 1] = {tn, all[j], un, m, t}
        else
          others = others + un
        end
      end
    end
  end
  return others, mine
end

-- n unit ops from ARGV[at], 6 values each: units (negative = given back), total cap, store
-- field ('' = none), store cap, holder ('' = guest), now_us (cap 0 = none); op i works on
-- KEYS[first + i]. Returns what a cap would pass, or nil.
local function check_units(first, at, n)
  for i = 0, n - 1 do
    local k, key = at + 6 * i, KEYS[first + i]
    local du, cap, sf, scap = tonumber(ARGV[k]), tonumber(ARGV[k + 1]), ARGV[k + 2],
                              tonumber(ARGV[k + 3])
    if du > 0 and cap > 0 then
      local others = live_reservations(key, ARGV[k + 4], tonumber(ARGV[k + 5]))
      local sold = tonumber(redis.call('HGET', key, 'sold') or '0')
      if sold + du + others > cap then return 'units:' .. key end
    end
    if du > 0 and scap > 0 and sf ~= '' then
      local sold = tonumber(redis.call('HGET', key, sf) or '0')
      if sold + du > scap then return 'store units:' .. key end
    end
  end
  return nil
end

-- count the units; a commit uses the holder's live reservations first, soonest lapse first
local function apply_units(first, at, n)
  for i = 0, n - 1 do
    local k, key = at + 6 * i, KEYS[first + i]
    local du, sf, holder = tonumber(ARGV[k]), ARGV[k + 2], ARGV[k + 4]
    redis.call('HINCRBY', key, 'sold', du)
    if sf ~= '' then redis.call('HINCRBY', key, sf, du) end
    if du > 0 and holder ~= '' then
      local _, mine = live_reservations(key, holder, tonumber(ARGV[k + 5]))
      table.sort(mine, function(a, b)
        if a[1] ~= b[1] then return a[1] < b[1] end
        return a[2] < b[2]
      end)
      local left = du
      for _, r in ipairs(mine) do
        if left <= 0 then break end
        local take = math.min(left, r[3])
        redis.call('HSET', key, r[2], r[4] .. '|' .. tostring(r[3] - take) .. '|' .. r[5])
        left = left - take
      end
    end
  end
end
"""

# Reserve units for members of an issue, in the order given.
# KEYS: 1 the offer's units hash
# ARGV: 1 total cap, 2 now_us, 3 units each, 4 until_us, 5.. the reservation fields, then
#       as many member ids
# A field present already (a retried issue) is kept and not counted again.
# Reply: {'OK', refused member ids...}
RESERVE = (
    UNIT_PRELUDE
    + r"""
local cap, now_us, units = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local n = (#ARGV - 4) / 2
local others = live_reservations(KEYS[1], '', now_us)
local free = cap - tonumber(redis.call('HGET', KEYS[1], 'sold') or '0') - others
  - tonumber(redis.call('HGET', KEYS[1], 'p+:sold') or '0')  -- held by commits (cluster)
local out = {'OK'}
for i = 1, n do
  local field, member = ARGV[4 + i], ARGV[4 + n + i]
  if redis.call('HEXISTS', KEYS[1], field) == 0 then
    if units <= free then
      redis.call('HSET', KEYS[1], field, member .. '|' .. ARGV[3] .. '|' .. ARGV[4])
      free = free - units
    else
      out[#out + 1] = member
    end
  end
end
return out
"""
)

# Drop reservations (members an issue gave no coupon after all), or release a member's.
# KEYS: 1 the offer's units hash
# ARGV: 1 mode ('drop': ARGV[2..] are fields to delete; 'release': ARGV[2] member id,
#       ARGV[3] now_us: the member's reservations are set to 0 units)
# Reply: {'OK', units released (live ones only)}
UNRESERVE = (
    UNIT_PRELUDE
    + r"""
if ARGV[1] == 'drop' then
  for i = 2, #ARGV do redis.call('HDEL', KEYS[1], ARGV[i]) end
  return {'OK', 0}
end
local _, mine = live_reservations(KEYS[1], ARGV[2], tonumber(ARGV[3]))
local released = 0
for _, r in ipairs(mine) do
  released = released + r[3]
  redis.call('HSET', KEYS[1], r[2], r[4] .. '|0|' .. r[5])
end
return {'OK', released}
"""
)

# On a cluster (the units hash is the counter ``ctr:{u:<offer>}``): step 1 of a commit's
# reserve / apply / confirm (server.store.redis.reservations) for its unit ops on one offer.
# The caps are checked as check_units does, with units held by other commits (``p+:sold``,
# ``p+:<store field>``) counted as sold; the units are held as pending (record fields
# ``o:sold``, ``o:<store field>``, settled by the shared SETTLE) and the holder's own live
# reservations are used now, soonest lapse first (record fields ``k:<reservation field>`` =
# units taken, which a release puts back).
# KEYS: 1 units hash, 2 reservation record, 3 pending set
# ARGV: 1 tx, 2 deadline us, 3 record TTL ms (0 = none), 4 home, then n x 6 unit op values
#       (check_units's layout)
# Reply: as RESERVE's of server.store.redis.reservations
HOLD = (
    UNIT_PRELUDE
    + r"""
local st = redis.call('HGET', KEYS[2], 's')
if st == 'r' or st == 'c' then return {'OK', st} end
if st then return {'RELEASED'} end
local n = (#ARGV - 4) / 6
for i = 0, n - 1 do
  local k = 5 + 6 * i
  local du, cap, sf, scap = tonumber(ARGV[k]), tonumber(ARGV[k + 1]), ARGV[k + 2],
                            tonumber(ARGV[k + 3])
  if du > 0 and cap > 0 then
    local others = live_reservations(KEYS[1], ARGV[k + 4], tonumber(ARGV[k + 5]))
    local sold = tonumber(redis.call('HGET', KEYS[1], 'sold') or '0')
      + tonumber(redis.call('HGET', KEYS[1], 'p+:sold') or '0')
    if sold + du + others > cap then return {'REFUSED', 'sold'} end
  end
  if du > 0 and scap > 0 and sf ~= '' then
    local sold = tonumber(redis.call('HGET', KEYS[1], sf) or '0')
      + tonumber(redis.call('HGET', KEYS[1], 'p+:' .. sf) or '0')
    if sold + du > scap then return {'REFUSED', sf} end
  end
end
redis.call('HSET', KEYS[2], 's', 'r', 'h', ARGV[4], 'until', ARGV[2])
for i = 0, n - 1 do
  local k = 5 + 6 * i
  local du, sf, holder = tonumber(ARGV[k]), ARGV[k + 2], ARGV[k + 4]
  if du > 0 then
    redis.call('HINCRBY', KEYS[1], 'p+:sold', du)
    redis.call('HINCRBY', KEYS[2], 'o:sold', du)
    if sf ~= '' then
      redis.call('HINCRBY', KEYS[1], 'p+:' .. sf, du)
      redis.call('HINCRBY', KEYS[2], 'o:' .. sf, du)
    end
    if holder ~= '' then
      local _, mine = live_reservations(KEYS[1], holder, tonumber(ARGV[k + 5]))
      table.sort(mine, function(a, b)
        if a[1] ~= b[1] then return a[1] < b[1] end
        return a[2] < b[2]
      end)
      local left = du
      for _, r in ipairs(mine) do
        if left <= 0 then break end
        local take = math.min(left, r[3])
        redis.call('HSET', KEYS[1], r[2], r[4] .. '|' .. tostring(r[3] - take) .. '|' .. r[5])
        redis.call('HINCRBY', KEYS[2], 'k:' .. r[2], take)
        left = left - take
      end
    end
  end
end
if tonumber(ARGV[3]) > 0 then redis.call('PEXPIRE', KEYS[2], ARGV[3]) end
redis.call('ZADD', KEYS[3], ARGV[2], ARGV[1])
return {'OK', 'r'}
"""
)

UNIT_SCRIPTS = {"reserve_units": RESERVE, "unreserve_units": UNRESERVE}
