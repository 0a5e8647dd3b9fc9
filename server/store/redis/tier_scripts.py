"""The Lua scripts of tier requalification runs (:mod:`server.store.redis.tiers`); each body
runs after the shared prelude of :mod:`server.store.redis.scripts` (``version``, ``write``)."""

from __future__ import annotations

# Claim a run: the first call records it (refused when a run of another id has claimed this
# period or a later one); a retry finds it.
# KEYS: 1 the run (hash), 2 the last period claimed ("<period_us>|<run id>")
# ARGV: 1 run id, 2 period end us
# Reply: {'OK', done 0/1}, {'EXISTS', period_us} (the id ran for that other period), or
#        {'REFUSED', period_us, run id} (the period that run claimed)
TIER_CLAIM = r"""
local p = redis.call('HGET', KEYS[1], 'period_us')
if p then
  if p ~= ARGV[2] then return {'EXISTS', p} end
  return {'OK', redis.call('HGET', KEYS[1], 'done') or '0'}
end
local last = redis.call('GET', KEYS[2])
if last then
  local lp, lr = string.match(last, '^(-?%d+)|(.*)$')
  if tonumber(lp) >= tonumber(ARGV[2]) then return {'REFUSED', lp, lr} end
end
redis.call('HSET', KEYS[1], 'period_us', ARGV[2], 'done', 0, 'upgraded', 0, 'downgraded', 0,
           'kept', 0)
redis.call('SET', KEYS[2], ARGV[2] .. '|' .. ARGV[1])
return {'OK', '0'}
"""

# Write requalified members, each only if its document did not move since it was read, and
# count each member written in the run (one atomic step for the batch).
# KEYS: 1 the run (hash), 2.. the member documents
# ARGV: per member, 3 values: version expected, new doc, what happened (the run's count field)
# Reply: {'OK', i...}: the 1-based positions among the members whose document moved (not
#        written: the caller reads and requalifies them again)
TIER_APPLY = r"""
local moved = {'OK'}
for i = 2, #KEYS do
  local k = 3 * (i - 2)
  local mv = tonumber(ARGV[k + 1])
  if version(KEYS[i]) == mv then
    write(KEYS[i], mv, ARGV[k + 2], 0)
    redis.call('HINCRBY', KEYS[1], ARGV[k + 3], 1)
  else
    moved[#moved + 1] = i - 1
  end
end
return moved
"""

TIER_SCRIPTS = {"tier_claim": TIER_CLAIM, "tier_apply": TIER_APPLY}
