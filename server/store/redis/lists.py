"""Shopping-list ids on Redis (:mod:`server.store.lists`): ``list:<list_id>`` holds the member
id, ``mlist:{<member_id>}`` the member's list id; both written by one Lua script that draws
nothing twice, never expire, and are kept apart from the member document (so a member with a
list costs two small keys, and checkout's one-round-trip member read is unchanged).

On a Redis Cluster the two keys are in different slots (``list:{<list_id>}`` its own,
``mlist:`` the member's home slot), so a list id is drawn in two steps: the id is claimed in its
own slot (``SET NX``: drawn again if some list has it), then bound to the member in the home
slot by a script that keeps the member's list id when it has one already (a concurrent call
bound another first, or the member is unknown); a claim that was not bound is deleted. A
process that dies between the steps leaves a claimed id that no one was ever given: 130 random
bits that resolve to the member only for whoever guesses them (an error while binding leaves
the claim too: the id may have been bound before the reply was lost)."""

from __future__ import annotations

from typing import cast

from engine.errors import NotFound
from server.store import lists
from server.store.redis.io import RedisIO

# KEYS: the member's list key, the new list key, the member document.
# ARGV: the new list id, the member id.
# Reply: the member's list id (the stored one when it has one), "COLLIDED" when the drawn id is
# some list's already, or "MISSING" when there is no such member.
_ISSUE = """
local have = redis.call('GET', KEYS[1])
if have then return have end
if redis.call('EXISTS', KEYS[3]) == 0 then return 'MISSING' end
if redis.call('SET', KEYS[2], ARGV[2], 'NX') == false then return 'COLLIDED' end
redis.call('SET', KEYS[1], ARGV[1])
return ARGV[1]
"""


# On a cluster, in the member's home slot. KEYS: the member's list key, the member document.
# ARGV: the claimed list id. Reply: the member's list id (the stored one when it has one), or
# "MISSING" when there is no such member.
_BIND = """
local have = redis.call('GET', KEYS[1])
if have then return have end
if redis.call('EXISTS', KEYS[2]) == 0 then return 'MISSING' end
redis.call('SET', KEYS[1], ARGV[1])
return ARGV[1]
"""


def list_id(io: RedisIO, member_id: str) -> str:
    """The member's list id, drawn and stored atomically the first time; NotFound for an
    unknown member."""
    found = io.get(io.keys.member_list(member_id))
    if found is not None:
        return found.decode()
    if io.keys.cluster:
        return _list_id_across_slots(io, member_id)
    script = io.client.register_script(_ISSUE)
    while True:
        token = lists.draw()
        keys = [
            io.keys.member_list(member_id),
            io.keys.shopping_list(token),
            io.keys.member(member_id),
        ]
        reply = cast(bytes, script(keys=keys, args=[token, member_id])).decode()
        if reply == "MISSING":
            raise NotFound(f"member {member_id!r} not found")
        if reply != "COLLIDED":
            return reply


def _list_id_across_slots(io: RedisIO, member_id: str) -> str:
    """:func:`list_id` on a cluster (the module docstring's two steps)."""
    k = io.keys
    while True:
        token = lists.draw()
        if io.client.set(k.shopping_list(token), member_id, nx=True):
            break
    bind = io.client.register_script(_BIND)
    keys = [k.member_list(member_id), k.member(member_id)]
    reply = cast(bytes, bind(keys=keys, args=[token])).decode()
    if reply != token:
        io.client.delete(k.shopping_list(token))
    if reply == "MISSING":
        raise NotFound(f"member {member_id!r} not found")
    return reply


def list_member(io: RedisIO, list_id: str) -> str | None:
    """The member whose list ``list_id`` is; None when it is no list."""
    found = io.get(io.keys.shopping_list(list_id))
    return None if found is None else found.decode()
