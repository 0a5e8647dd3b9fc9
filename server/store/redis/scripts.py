"""The Redis store's Lua scripts: every state change is one of these, run atomically.

Each script is a module constant: a shared prelude of helpers plus a body whose ``KEYS``/
``ARGV`` contract is written above it. Python computes the new documents from a snapshot
(:mod:`server.store.redis.checkout`); a script re-checks, in one atomic step, that nothing it
depends on changed since — the versions of the documents it replaces, the global uses and
budgets of the offers it counts, the uses left of the codes it consumes — and only then writes
everything, including the ledger entry. Every check runs before the first write, so a refused
script has changed nothing.

Replies: ``{'OK', seq}`` (``seq`` = the ledger entry written, 0 if none), ``{'EXISTS'}`` (the
id was used before: the caller reads the stored outcome), ``{'CONFLICT', what}`` (state moved:
the caller re-reads, re-prices and tries again, a bounded number of times).

Scripts are registered once per client (``redis.Redis.register_script``): they run by SHA and
are re-loaded by redis-py on ``NOSCRIPT`` (after a restart or ``SCRIPT FLUSH``).
"""

from __future__ import annotations

from server.store.redis.tier_scripts import TIER_SCRIPTS
from server.store.redis.unit_scripts import UNIT_PRELUDE, UNIT_SCRIPTS

PRELUDE = (
    UNIT_PRELUDE
    + r"""
local function version(key)
  local cur = redis.call('GET', key)
  if not cur then return 0 end
  return tonumber(string.match(cur, '^(%d+)|'))
end

-- ttl_ms > 0: expire after it; 0: keep forever; -1: keep the key's current TTL
local function write(key, old_version, doc, ttl_ms)
  local value = tostring(old_version + 1) .. '|' .. doc
  ttl_ms = tonumber(ttl_ms)
  if ttl_ms > 0 then
    redis.call('SET', key, value, 'PX', ttl_ms)
  elseif ttl_ms < 0 then
    redis.call('SET', key, value, 'KEEPTTL')
  else
    redis.call('SET', key, value)
  end
end

-- n offer operations from ARGV[at]: id, uses delta, budget delta, uses cap, budget cap
-- (cap 0 = none). Returns the offer id whose cap a positive delta would pass, or nil.
local function check_offers(usage, at, n)
  for i = 0, n - 1 do
    local k = at + 5 * i
    local id, du, db = ARGV[k], tonumber(ARGV[k + 1]), tonumber(ARGV[k + 2])
    local cu, cb = tonumber(ARGV[k + 3]), tonumber(ARGV[k + 4])
    if du > 0 and cu > 0 then
      local used = tonumber(redis.call('HGET', usage, 'u:' .. id) or '0')
      if used + du > cu then return 'uses:' .. id end
    end
    if db > 0 and cb > 0 then
      local spent = tonumber(redis.call('HGET', usage, 'b:' .. id) or '0')
      if spent + db > cb then return 'budget:' .. id end
    end
  end
  return nil
end

local function apply_offers(usage, at, n)
  for i = 0, n - 1 do
    local k = at + 5 * i
    local id, du, db = ARGV[k], tonumber(ARGV[k + 1]), tonumber(ARGV[k + 2])
    if du ~= 0 then redis.call('HINCRBY', usage, 'u:' .. id, du) end
    if db ~= 0 then redis.call('HINCRBY', usage, 'b:' .. id, db) end
  end
end

-- code coupons are KEYS[first..last] (last: #KEYS when nil); delta -1 consumes a use
-- (refused when none is left)
local function check_codes(first, delta, last)
  if delta >= 0 then return nil end
  for i = first, last or #KEYS do
    local left = tonumber(redis.call('HGET', KEYS[i], 'left') or '0')
    if left + delta < 0 then return 'code:' .. KEYS[i] end
  end
  return nil
end

local function apply_codes(first, delta, last)
  for i = first, last or #KEYS do redis.call('HINCRBY', KEYS[i], 'left', delta) end
end

-- a member's turn (server.store.redis.checkout): delete it if it is still the caller's
-- (token); then, when no lane holds it, leave one wake-up for the lanes waiting (BLPOP on the
-- wake list) unless one is there already. Returns 1 when it left one.
local function give_turn(turn, wake, token, wake_ttl_ms)
  local cur = redis.call('GET', turn)
  if cur == token then
    redis.call('DEL', turn)
    cur = false
  end
  if cur or redis.call('LLEN', wake) > 0 then return 0 end
  redis.call('RPUSH', wake, '1')
  redis.call('PEXPIRE', wake, wake_ttl_ms)
  return 1
end

-- the ledger entry from ARGV[at..at+5]: kind, entry id, transaction id, member id, at_us, body.
-- One ledger (LEDGER_SHARDS 0): seq = INCR. A cluster's shard ``ledger:{s<k>}``: seq =
-- t * 1000 + k (written as a string: Lua's doubles would round it), t = this node's clock in
-- us, at least the shard's last t + 1, so a shard's entries are in order and no two shards'
-- entries share a seq (server.store.redis.ledger merges them)
local function append(stream, seq_key, at)
  local seq
  if LEDGER_SHARDS == 0 then
    seq = redis.call('INCR', seq_key)
  else
    local now = redis.call('TIME')
    local t = tonumber(now[1]) * 1000000 + tonumber(now[2])
    local last = tonumber(redis.call('GET', seq_key) or '0')
    if t <= last then t = last + 1 end
    redis.call('SET', seq_key, string.format('%d', t))
    local shard = tonumber(string.match(seq_key, '{s(%d+)}:seq$'))
    seq = string.format('%d%03d', t, shard)
  end
  redis.call('XADD', stream, seq .. '-1', 'kind', ARGV[at], 'entry_id', ARGV[at + 1],
             'transaction_id', ARGV[at + 2], 'member_id', ARGV[at + 3], 'at_us', ARGV[at + 4],
             'body', ARGV[at + 5])
  return seq
end
"""
)

# KEYS: 1 tx, 2 member (the tx key again for a guest), 3 usage, 4 ledger, 5 ledger seq,
#       6 the member's turn (lease), 7 its wake list (both the tx key again for a guest),
#       8.. the code coupons consumed (one use each), then the units hashes of the unit ops
# ARGV: 1 member version expected (-1 = guest), 2 member doc, 3 tx doc, 4 tx TTL ms,
#       5 n offers, then 5 per offer (see check_offers), then the ledger entry (6 fields),
#       then n unit ops and 6 per op (see check_units, server/store/redis/unit_scripts.py),
#       then the caller's turn token ('' = none) and the wake-up TTL ms
# While another lane holds the member's turn, the commit is refused ({'CONFLICT', 'turn'}):
# the lane whose turn it is goes through (an expired turn protects nothing, and needs not).
# A commit made in its lane's turn gives the turn up as it applies (as TURN_GIVE does), so the
# next lane wakes at once.
COMMIT = (
    PRELUDE
    + r"""
if redis.call('EXISTS', KEYS[1]) == 1 then return {'EXISTS'} end
local mv = tonumber(ARGV[1])
local token = ARGV[#ARGV - 1]
if mv >= 0 then
  local turn = redis.call('GET', KEYS[6])
  if turn and turn ~= token then return {'CONFLICT', 'turn'} end
  if version(KEYS[2]) ~= mv then return {'CONFLICT', 'member'} end
end
local n = tonumber(ARGV[5])
local nu = tonumber(ARGV[12 + 5 * n])
local uk = #KEYS - nu + 1
local bad = check_offers(KEYS[3], 6, n) or check_codes(8, -1, uk - 1)
  or check_units(uk, 13 + 5 * n, nu)
if bad then return {'CONFLICT', bad} end
apply_offers(KEYS[3], 6, n)
apply_codes(8, -1, uk - 1)
apply_units(uk, 13 + 5 * n, nu)
if mv >= 0 then write(KEYS[2], mv, ARGV[2], 0) end
write(KEYS[1], 0, ARGV[3], ARGV[4])
local seq = append(KEYS[4], KEYS[5], 6 + 5 * n)
if mv >= 0 and token ~= '' then give_turn(KEYS[6], KEYS[7], token, ARGV[#ARGV]) end
return {'OK', seq}
"""
)

# A commit on a Redis Cluster (server.store.redis.homes), in the member's home slot only: its
# global counters were reserved before (server.store.redis.reservations) under the attempt id
# whose fate this script settles ``applied``, unless the sweep aborted it first.
# KEYS: 1 tx, 2 member (the tx key again for a guest), 3 ledger shard, 4 its seq, 5 the
#       member's turn (lease), 6 its wake list (both the tx key again for a guest), 7 the fate
# ARGV: 1 member version expected (-1 = guest), 2 member doc, 3 tx doc, 4 tx TTL ms,
#       5..10 the ledger entry, 11 the caller's turn token ('' = none), 12 the wake-up TTL ms,
#       13 the fate's TTL ms
COMMIT_HOME = (
    PRELUDE
    + r"""
if redis.call('EXISTS', KEYS[1]) == 1 then return {'EXISTS'} end
local mv = tonumber(ARGV[1])
local token = ARGV[11]
if mv >= 0 then
  local turn = redis.call('GET', KEYS[5])
  if turn and turn ~= token then return {'CONFLICT', 'turn'} end
  if version(KEYS[2]) ~= mv then return {'CONFLICT', 'member'} end
end
if redis.call('GET', KEYS[7]) == 'aborted' then return {'CONFLICT', 'aborted'} end
redis.call('SET', KEYS[7], 'applied', 'PX', ARGV[13])
if mv >= 0 then write(KEYS[2], mv, ARGV[2], 0) end
write(KEYS[1], 0, ARGV[3], ARGV[4])
local seq = append(KEYS[3], KEYS[4], 5)
if mv >= 0 and token ~= '' then give_turn(KEYS[5], KEYS[6], token, ARGV[12]) end
return {'OK', seq}
"""
)

# KEYS: 1 tx, 2 member (the tx key again for a guest), 3 usage, 4 ledger, 5 ledger seq,
#       6.. the code coupons given back (one use each), then the units hashes of the unit ops
# ARGV: 1 tx version expected, 2 member version expected (-1 = guest), 3 tx doc,
#       4 member doc, 5 n offers, then 5 per offer, then the ledger entry (6 fields), then
#       n unit ops and 6 per op (units given back, see check_units)
CANCEL = (
    PRELUDE
    + r"""
local tv, mv = tonumber(ARGV[1]), tonumber(ARGV[2])
if version(KEYS[1]) ~= tv then return {'CONFLICT', 'transaction'} end
if mv >= 0 and version(KEYS[2]) ~= mv then return {'CONFLICT', 'member'} end
local n = tonumber(ARGV[5])
local nu = tonumber(ARGV[12 + 5 * n] or '0')
local uk = #KEYS - nu + 1
apply_offers(KEYS[3], 6, n)
apply_codes(6, 1, uk - 1)
apply_units(uk, 13 + 5 * n, nu)
write(KEYS[1], tv, ARGV[3], -1)
if mv >= 0 then write(KEYS[2], mv, ARGV[4], 0) end
return {'OK', append(KEYS[4], KEYS[5], 6 + 5 * n)}
"""
)

# KEYS: 1 tx, 2 member (the tx key again for a guest), 3 usage, 4 ledger, 5 ledger seq,
#       6 the return
# ARGV: 1 tx version expected, 2 member version expected (-1 = guest), 3 tx doc,
#       4 member doc, 5 return doc, 6 return TTL ms, 7 n offers, then 5 per offer (budget
#       given back), then the ledger entry (6 fields)
RETURN = (
    PRELUDE
    + r"""
if redis.call('EXISTS', KEYS[6]) == 1 then return {'EXISTS'} end
local tv, mv = tonumber(ARGV[1]), tonumber(ARGV[2])
if version(KEYS[1]) ~= tv then return {'CONFLICT', 'transaction'} end
if mv >= 0 and version(KEYS[2]) ~= mv then return {'CONFLICT', 'member'} end
local n = tonumber(ARGV[7])
apply_offers(KEYS[3], 8, n)
write(KEYS[1], tv, ARGV[3], -1)
if mv >= 0 then write(KEYS[2], mv, ARGV[4], 0) end
write(KEYS[6], 0, ARGV[5], ARGV[6])
return {'OK', append(KEYS[4], KEYS[5], 8 + 5 * n)}
"""
)

# KEYS: 1 member, 2 the adjustment, 3 ledger, 4 ledger seq
# ARGV: 1 member version expected, 2 member doc, 3 adjustment doc, 4 its TTL ms,
#       5.. the ledger entry (6 fields)
ADJUST = (
    PRELUDE
    + r"""
if redis.call('EXISTS', KEYS[2]) == 1 then return {'EXISTS'} end
local mv = tonumber(ARGV[1])
if version(KEYS[1]) ~= mv then return {'CONFLICT', 'member'} end
write(KEYS[1], mv, ARGV[2], 0)
write(KEYS[2], 0, ARGV[3], ARGV[4])
return {'OK', append(KEYS[3], KEYS[4], 5)}
"""
)

# A member's commit turn (server.store.redis.checkout): take it, or keep it when it is ours.
# KEYS: 1 the turn (lease)
# ARGV: 1 token, 2 TTL ms
# Reply: {1} = the turn is ours (for TTL ms from now), {0} = another lane holds it
TURN_TAKE = r"""
local cur = redis.call('GET', KEYS[1])
if cur == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return {1}
end
if cur then return {0} end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return {1}
"""

# Give a turn up (give_turn in the prelude).
# KEYS: 1 the turn (lease), 2 the wake list
# ARGV: 1 token, 2 wake-up TTL ms
# Reply: {1} = a wake-up was left, {0} = not
TURN_GIVE = (
    PRELUDE
    + r"""
return {give_turn(KEYS[1], KEYS[2], ARGV[1], ARGV[2])}
"""
)

# Upsert a profile, issue wallet coupons: replace member documents if none moved meanwhile.
# KEYS: the member documents
# ARGV: per key, 2 values: version expected (0 = must not exist yet), new doc
PUT_MEMBERS = (
    PRELUDE
    + r"""
for i = 1, #KEYS do
  if version(KEYS[i]) ~= tonumber(ARGV[2 * i - 1]) then return {'CONFLICT', KEYS[i]} end
end
for i = 1, #KEYS do write(KEYS[i], tonumber(ARGV[2 * i - 1]), ARGV[2 * i], 0) end
return {'OK', 0}
"""
)

# Create code coupons; an identical re-creation is a no-op, a different one is refused.
# KEYS: the codes
# ARGV: 1 offer id, 2 uses per code, 3 per member 0/1, 4 valid from us, 5 valid until us
# Reply: {'OK', created} or {'EXISTS', index of the first code defined otherwise (1-based)}
CREATE_CODES = r"""
local created = 0
for i = 1, #KEYS do
  local cur = redis.call('HMGET', KEYS[i], 'offer', 'per_code', 'per_member', 'from_us',
                         'until_us')
  if cur[1] and (cur[1] ~= ARGV[1] or cur[2] ~= ARGV[2] or cur[3] ~= ARGV[3]
                 or cur[4] ~= ARGV[4] or cur[5] ~= ARGV[5]) then
    return {'EXISTS', i}
  end
  -- on a cluster: a code batch's claim, not complete yet (server.store.redis.code_claims)
  if not cur[1] and redis.call('EXISTS', KEYS[i]) == 1 then return {'EXISTS', i} end
end
for i = 1, #KEYS do
  if redis.call('EXISTS', KEYS[i]) == 0 then
    redis.call('HSET', KEYS[i], 'offer', ARGV[1], 'left', ARGV[2], 'per_code', ARGV[2],
               'per_member', ARGV[3], 'from_us', ARGV[4], 'until_us', ARGV[5])
    created = created + 1
  end
end
return {'OK', created}
"""


def scripts(shards: int = 0) -> dict[str, str]:
    """Every script by name; ``shards`` > 0: the ledger is that many shard streams (a
    cluster, :meth:`server.store.redis.keys.Keys.ledger_of`), 0: the one ledger."""
    head = f"local LEDGER_SHARDS = {int(shards)}\n"
    return {name: head + src for name, src in SCRIPTS.items()}


# Read one ledger stream with the clock of the node that holds it (server.store.redis.ledger):
# every entry appended before this read has a seq below the clock's time * 1000.
# KEYS: 1 the stream   ARGV: 1 start (exclusive '(<id>' or '-'), 2 count (0 = all)
# Reply: {seconds, microseconds, entries}
LEDGER_READ = r"""
local now = redis.call('TIME')
local rows
if tonumber(ARGV[2]) > 0 then
  rows = redis.call('XRANGE', KEYS[1], ARGV[1], '+', 'COUNT', ARGV[2])
else
  rows = redis.call('XRANGE', KEYS[1], ARGV[1], '+')
end
return {now[1], now[2], rows}
"""

SCRIPTS = {
    "commit": COMMIT,
    "commit_home": COMMIT_HOME,
    "ledger_read": LEDGER_READ,
    "cancel": CANCEL,
    "return": RETURN,
    "adjust": ADJUST,
    "put_members": PUT_MEMBERS,
    "create_codes": CREATE_CODES,
    "turn_take": TURN_TAKE,
    "turn_give": TURN_GIVE,
    **UNIT_SCRIPTS,
    **{name: PRELUDE + body for name, body in TIER_SCRIPTS.items()},
}
