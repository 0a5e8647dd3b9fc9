"""Exact global limits across cluster slots: reserve, apply, confirm (docs/design.md §5).

On a Redis Cluster one script cannot touch a member's document and an offer's global counters
at once (they live in different slots, often on different shards). A change that needs global
counters therefore goes in three steps, each one atomic script in one slot and each idempotent
per transaction id, so any step may be retried, raced by itself, or repaired by the sweep:

1. :meth:`Reservations.reserve` — per counter slot: check ``value + pending + delta`` against
   the bound and hold the delta as *pending* (``ctr:{<name>}`` fields ``p+:<f>``/``p-:<f>``),
   with a reservation record ``ctr:{<name>}:r:<tx>`` (status ``r``, the deltas, the
   transaction's home slot) and an entry in ``ctr:{<name>}:pending`` scored by its deadline.
   Pending deltas count against the bound, so reservations alone can never pass it.
2. the change itself in the home slot (the member's), fenced by :meth:`Reservations.decide`:
   ``fate:{<home>}:<tx>`` becomes ``applied`` (the commit script's job; ``decide`` here)
   unless the sweep made it ``aborted`` first — then the change is refused.
3. :meth:`Reservations.confirm` — per counter slot: pending becomes counted (status ``c``).

:meth:`Reservations.sweep` repairs a crash between the steps: for every reservation past its
deadline it settles the transaction's fate in the home slot (``aborted`` unless it is
``applied`` already — the same fence, so a slow committer and the sweep cannot both win) and
then confirms (applied) or releases (aborted) it. Nothing is ever counted twice (a confirm
after a confirm, a release after a release are no-ops) or lost (a reservation is released only
once its transaction can no longer apply). A release of a reservation never made leaves a
tombstone (status ``x``), so a reserve arriving late is refused rather than held for ever.

Reversals (cancel, return) only give back: :meth:`Reservations.give_back` applies negative
deltas once per reversal id (its record, status ``c``), with no bound to check.

An offer's units hash on a cluster (counter ``u:<offer>``) is held by its own step-1 script,
:data:`server.store.redis.unit_scripts.HOLD` (unit caps count other members' reservations and
use the holder's first); its record's ``k:<reservation>`` fields (units taken from the
holder's reservations) are put back by a release.

Counters are hashes of integer fields; a bound applies to positive deltas as a cap
(``value + pending + delta <= bound``, bound 0 = none) and to negative ones as a floor
(``value + pending + delta >= bound``: a code's ``left`` never goes below 0).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import cast

import redis

from server.store.redis.keys import Keys
from server.store.redis.replicas import run_script
from server.store.redis.unit_scripts import HOLD

# how long a store keeps reservation records, tombstones and fates (a day: far past any
# attempt's deadline and the sweep that settles it)
RECORD_TTL_MS = 86_400_000

# KEYS: 1 counter hash, 2 reservation record, 3 pending set
# ARGV: 1 tx, 2 deadline us, 3 record TTL ms (0 = none), 4 home, 5 n, then n x (field, delta,
#       bound)
# Reply: {'OK', 'r'|'c'} (held now or before; 'c' = already confirmed), {'RELEASED'} (the
#        sweep or a caller released it: the transaction must not apply), {'REFUSED', field}
RESERVE = r"""
local st = redis.call('HGET', KEYS[2], 's')
if st == 'r' or st == 'c' then return {'OK', st} end
if st then return {'RELEASED'} end
local n = tonumber(ARGV[5])
for i = 0, n - 1 do
  local f, d, b = ARGV[6 + 3 * i], tonumber(ARGV[7 + 3 * i]), tonumber(ARGV[8 + 3 * i])
  local v = tonumber(redis.call('HGET', KEYS[1], f) or '0')
  if d > 0 and b > 0 then
    local p = tonumber(redis.call('HGET', KEYS[1], 'p+:' .. f) or '0')
    if v + p + d > b then return {'REFUSED', f} end
  elseif d < 0 then
    local p = tonumber(redis.call('HGET', KEYS[1], 'p-:' .. f) or '0')
    if v + p + d < b then return {'REFUSED', f} end
  end
end
redis.call('HSET', KEYS[2], 's', 'r', 'h', ARGV[4], 'until', ARGV[2])
for i = 0, n - 1 do
  local f, d = ARGV[6 + 3 * i], tonumber(ARGV[7 + 3 * i])
  if d > 0 then redis.call('HINCRBY', KEYS[1], 'p+:' .. f, d)
  elseif d < 0 then redis.call('HINCRBY', KEYS[1], 'p-:' .. f, d) end
  redis.call('HSET', KEYS[2], 'o:' .. f, d)
end
if tonumber(ARGV[3]) > 0 then redis.call('PEXPIRE', KEYS[2], ARGV[3]) end
redis.call('ZADD', KEYS[3], ARGV[2], ARGV[1])
return {'OK', 'r'}
"""

# KEYS: 1 counter hash, 2 reservation record, 3 pending set
# ARGV: 1 tx, 2 'c' (confirm) or 'x' (release), 3 tombstone TTL ms (0 = none)
# Reply: {'OK', status now} or {'SETTLED', the other status} (confirmed when asked to release,
#        released when asked to confirm)
SETTLE = r"""
local st = redis.call('HGET', KEYS[2], 's')
if st == ARGV[2] then return {'OK', st} end
if st == 'c' or st == 'x' then return {'SETTLED', st} end
if not st then
  -- never reserved (or long forgotten): a release leaves a tombstone, a confirm has nothing
  if ARGV[2] == 'c' then return {'SETTLED', 'none'} end
  redis.call('HSET', KEYS[2], 's', 'x')
  if tonumber(ARGV[3]) > 0 then redis.call('PEXPIRE', KEYS[2], ARGV[3]) end
  return {'OK', 'x'}
end
local all = redis.call('HGETALL', KEYS[2])
for j = 1, #all, 2 do
  if string.sub(all[j], 1, 2) == 'o:' then
    local f, d = string.sub(all[j], 3), tonumber(all[j + 1])
    local p = d > 0 and 'p+:' or 'p-:'
    if d ~= 0 then redis.call('HINCRBY', KEYS[1], p .. f, -d) end
    if ARGV[2] == 'c' and d ~= 0 then redis.call('HINCRBY', KEYS[1], f, d) end
  elseif ARGV[2] == 'x' and string.sub(all[j], 1, 2) == 'k:' then
    -- units a commit took from its member's reservation (unit_scripts.HOLD) go back to it
    local f, take = string.sub(all[j], 3), tonumber(all[j + 1])
    local v = redis.call('HGET', KEYS[1], f)
    if v then
      local m, u, t = string.match(v, '^(.*)|(%d+)|(%d+)$')
      redis.call('HSET', KEYS[1], f, m .. '|' .. tostring(tonumber(u) + take) .. '|' .. t)
    end
  end
end
redis.call('HSET', KEYS[2], 's', ARGV[2])
redis.call('ZREM', KEYS[3], ARGV[1])
return {'OK', ARGV[2]}
"""

# KEYS: 1 counter hash, 2 the reversal's record
# ARGV: 1 record TTL ms (0 = none), 2 n, then n x (field, delta)
# Reply: {'OK', 1} applied now, {'OK', 0} applied before
GIVE_BACK = r"""
if redis.call('EXISTS', KEYS[2]) == 1 then return {'OK', 0} end
local n = tonumber(ARGV[2])
redis.call('HSET', KEYS[2], 's', 'c')
for i = 0, n - 1 do
  local f, d = ARGV[3 + 2 * i], tonumber(ARGV[4 + 2 * i])
  redis.call('HINCRBY', KEYS[1], f, d)
  redis.call('HSET', KEYS[2], 'o:' .. f, d)
end
if tonumber(ARGV[1]) > 0 then redis.call('PEXPIRE', KEYS[2], ARGV[1]) end
return {'OK', 1}
"""

# The fence in the transaction's home slot: the first decision stays.
# KEYS: 1 fate:{home}:tx   ARGV: 1 'applied' or 'aborted', 2 TTL ms (0 = none)
# Reply: {the decision that stands}
DECIDE = r"""
local cur = redis.call('GET', KEYS[1])
if cur then return {cur} end
if tonumber(ARGV[2]) > 0 then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
else
  redis.call('SET', KEYS[1], ARGV[1])
end
return {ARGV[1]}
"""


@dataclass(frozen=True, slots=True)
class Hold:
    """What one transaction reserves on one counter: ``ops`` = (field, delta, bound); or, on
    an offer's units hash (counter ``u:<offer>``), ``units``: its unit ops' values in the
    layout of :data:`server.store.redis.unit_scripts.HOLD` (which checks the unit caps)."""

    counter: str  # the counter's name, its hash tag: "o:<offer id>", "c:<code>", "u:<offer>"
    ops: tuple[tuple[str, int, int], ...]
    units: tuple[str | int, ...] = ()


class Refused(Exception):
    """A reservation would pass a bound: the counter and field it would pass."""

    def __init__(self, counter: str, field: str) -> None:
        super().__init__(f"{counter}: {field} would pass its bound")
        self.counter, self.field = counter, field


class Released(Exception):
    """The transaction's reservations were released (by the sweep, its deadline passed): it
    must not apply; a retry under a new transaction id may."""


class Reservations:
    """The three steps and the sweep on one client (single Redis or cluster alike)."""

    def __init__(
        self,
        client: redis.Redis,
        keys: Keys,
        *,
        ttl_ms: int,
        wait_replicas: int = 0,
        wait_timeout_ms: int = 1000,
    ) -> None:
        self.client, self.keys, self.ttl_ms = client, keys, ttl_ms
        # a reservation lost in a failover would let its commit apply uncounted: it waits for
        # this many replicas before the commit goes on (server.store.redis.replicas)
        self.wait_replicas, self.wait_timeout_ms = wait_replicas, wait_timeout_ms
        self._reserve = client.register_script(RESERVE)
        self._settle = client.register_script(SETTLE)
        self._give_back = client.register_script(GIVE_BACK)
        self._decide = client.register_script(DECIDE)
        self._hold_units = client.register_script(HOLD)
        self._named: set[str] = set()  # counters this client put in the registry already

    def _keys(self, counter: str, tx: str) -> list[str]:
        k = self.keys
        return [k.counter(counter), k.reservation(counter, tx), k.pending(counter)]

    def reserve(self, tx: str, home: str, holds: Sequence[Hold], deadline_us: int) -> None:
        """Step 1: hold every counter's deltas, or none (what was held is released on a
        refusal). Raises :class:`Refused` or :class:`Released`."""
        done: list[Hold] = []
        try:
            for hold in holds:
                args: list[str | int] = [tx, deadline_us, self.ttl_ms, home]
                script = self._hold_units if hold.units else self._reserve
                if hold.units:
                    args += hold.units
                else:
                    args.append(len(hold.ops))
                    for field, delta, bound in hold.ops:
                        args += [field, delta, bound]
                keys = self._keys(hold.counter, tx)
                if self.wait_replicas > 0:
                    raw = run_script(
                        self.client, script, keys, args, self.wait_replicas, self.wait_timeout_ms
                    )
                else:
                    raw = script(keys=keys, args=args)
                reply = _decoded(raw)
                if reply[0] == "REFUSED":
                    raise Refused(hold.counter, str(reply[1]))
                if reply[0] == "RELEASED":
                    raise Released(f"transaction {tx!r}: its reservations were released")
                done.append(hold)
        except (Refused, Released):
            self.release(tx, [h.counter for h in done])
            raise

    def decide(self, home: str, tx: str, fate: str) -> str:
        """Step 2's fence: ``applied`` (the change goes through) or ``aborted`` (the sweep);
        returns the decision that stands (the first one made)."""
        if fate not in ("applied", "aborted"):
            raise ValueError(f"a transaction's fate is applied or aborted, not {fate!r}")
        reply = self._decide(keys=[self.keys.fate(home, tx)], args=[fate, self.ttl_ms])
        return str(_decoded(reply)[0])

    def confirm(self, tx: str, counters: Iterable[str]) -> None:
        """Step 3: the held deltas become counted (a repeat is a no-op)."""
        for counter in counters:
            self._settle(keys=self._keys(counter, tx), args=[tx, "c", self.ttl_ms])

    def release(self, tx: str, counters: Iterable[str]) -> None:
        """Give the held deltas up (a repeat is a no-op; a confirmed reservation stays)."""
        for counter in counters:
            self._settle(keys=self._keys(counter, tx), args=[tx, "x", self.ttl_ms])

    def give_back(self, reversal_id: str, counter: str, ops: Sequence[tuple[str, int]]) -> bool:
        """A cancel's or a return's deltas (negative), once per reversal id: True if now."""
        args: list[str | int] = [self.ttl_ms, len(ops)]
        for field, delta in ops:
            args += [field, delta]
        k = self.keys
        reply = self._give_back(
            keys=[k.counter(counter), k.reservation(counter, reversal_id)], args=args
        )
        return _decoded(reply)[1] == 1

    def register(self, counters: Iterable[str]) -> None:
        """Name ``counters`` in the registry the store's sweep reads (``ctr:names``, a set in
        its own slot): before their first reservation, once per counter and client."""
        new = [c for c in counters if c not in self._named]
        if new:
            self.client.sadd(self.keys.counter_names, *new)
            self._named.update(new)

    def registered(self) -> list[str]:
        """The counters named in the registry (:meth:`register`)."""
        names = cast(set[bytes], self.client.smembers(self.keys.counter_names))
        return sorted(n.decode() for n in names)

    def value(self, counter: str, field: str) -> int:
        """A counter's counted value (pending deltas left out)."""
        return int(cast(bytes | None, self.client.hget(self.keys.counter(counter), field)) or 0)

    def counters(self) -> list[str]:
        """The names of the counters that have a pending set (on a cluster: every primary's)."""
        pattern = self.keys.pending("*")
        head, tail = pattern.split("*", 1)
        found = {
            (key.decode() if isinstance(key, bytes) else str(key))[len(head) : -len(tail)]
            for key in self.client.scan_iter(match=pattern, count=1000)
        }
        return sorted(found)

    def sweep(self, counters: Iterable[str] | None, now_us: int) -> dict[str, str]:
        """Settle every reservation of ``counters`` past its deadline: its transaction's fate
        is decided in its home slot (aborted, unless it applied), then it is confirmed or
        released (``counters`` None: all of them). Returns ``{tx: 'c'|'x'}`` for the
        reservations settled now."""
        settled: dict[str, str] = {}
        for counter in self.counters() if counters is None else counters:
            due = cast(
                list[bytes],
                self.client.zrangebyscore(self.keys.pending(counter), "-inf", now_us),
            )
            for raw in due:
                tx = raw.decode()
                home = cast(bytes | None, self.client.hget(self.keys.reservation(counter, tx), "h"))
                if home is None:  # the record expired: nothing is held any more
                    self.client.zrem(self.keys.pending(counter), tx)
                    continue
                settled[tx] = "c" if self.abandon(tx, home.decode(), [counter]) else "x"
        return settled

    def transact(
        self, tx: str, home: str, holds: Sequence[Hold], deadline_us: int, apply: Callable[[], bool]
    ) -> bool:
        """The three steps for one attempt: reserve ``holds`` (raises :class:`Refused`,
        :class:`Released`), then ``apply()`` — the change in the home slot, which must set
        the fate ``applied`` in its own script and refuse when it is ``aborted`` — then
        confirm. ``apply`` False (the home moved, nothing written): the reservations stay for
        the caller's next attempt under the same id, or for :meth:`abandon`. An exception
        leaves them to the sweep (the apply may or may not have happened)."""
        self.reserve(tx, home, holds, deadline_us)
        if not apply():
            return False
        self.confirm(tx, [h.counter for h in holds])
        return True

    def abandon(self, tx: str, home: str, counters: Iterable[str]) -> bool:
        """Settle ``tx`` for good: decide its fate (aborted, unless it applied) and confirm or
        release its reservations of ``counters`` accordingly. True when it had applied."""
        applied = self.decide(home, tx, "aborted") == "applied"
        if applied:
            self.confirm(tx, counters)
        else:
            self.release(tx, counters)
        return applied


def _decoded(reply: object) -> list[str | int]:
    return [x.decode() if isinstance(x, bytes) else x for x in cast(list[bytes | int], reply)]


__all__ = ["RECORD_TTL_MS", "Hold", "Refused", "Released", "Reservations"]
