"""The whole Redis key schema, in one place (tests import the same names).

Every key starts with a prefix (``loyalty:`` by default, ``RedisSettings.prefix``) so several
deployments or test runs can share one Redis. Documents are strings ``"<version>|<body>"``:
the version is what the Lua scripts compare-and-set, the body is read and written only by
Python (:mod:`server.store.redis.docs`): msgpack (JSON for documents stored before, still read;
a member or a transaction is rewritten as msgpack at its next write). Times inside documents
are integer microseconds since the Unix epoch, money integer minor units.

Member keys are hash-tagged by member id (``{M1}``); a member is one document plus, only while
lanes race on it, its turn and wake-up keys. The table gives the names on a single Redis; on a
Redis Cluster (``Keys.cluster``) they change as "Slots" below says.

=====================================  ======  ===============================================
key                                    type    what
=====================================  ======  ===============================================
``m:{<member_id>}``                    string  the member document: profile, debt, lifetime
                                               spend, point lots (with points left), spend
                                               records inside the rolling window, wallet
                                               coupons, per-offer usage by period
                                               ("offer\\tperiod" -> uses), per-member codes
                                               redeemed (code -> transaction)
``lease:{<member_id>}``                string  the member's commit turn: a random token
                                               ``SET NX PX`` by the lane whose turn it is
                                               (:mod:`server.store.redis.checkout`); the
                                               commit script refuses other lanes meanwhile
``wake:{<member_id>}``                 list    at most one wake-up for the lanes waiting for
                                               the turn (``BLPOP``, first come first served);
                                               both expire within a second
``tx:<transaction_id>``                string  the transaction document: request fingerprint,
                                               member, status, the CommitOutcome (with the
                                               CommitResponse bytes a retry answers), units
                                               returned per line, the member-limit period
                                               counted per offer, points burned per lot expiry,
                                               the earned lot, the cancel outcome.
                                               Expires after ``tx_retention_s`` (0 = never)
``ret:<return_id>``                    string  a return: fingerprint + ReturnOutcome (same TTL)
``adj:<adjustment_id>``                string  a points adjustment: fingerprint + AdjustOutcome
``code:<code>``                        hash    a code coupon: ``offer``, ``left`` (uses left),
                                               ``per_code``, ``per_member`` 0/1, ``from_us``,
                                               ``until_us``; ``batch`` (its batch, when
                                               generated), ``last_tx``, ``last_us`` (the last
                                               commit that used it)
``units:<offer_id>``                   hash    a unit-capped offer (:mod:`server.store.redis.
                                               units`): ``sold``, ``s:<store>`` units sold
                                               per store, ``r:<coupon_id>`` a reservation
                                               ``<member>|<units left>|<until_us>``
``list:<list_id>``                     string  a shopping-list id's member id
                                               (:mod:`server.store.redis.lists`)
``mlist:{<member_id>}``                string  the member's shopping-list id (never expires)
``tierrun:<run_id>``                   hash    a tier requalification run
                                               (:mod:`server.store.redis.tiers`):
                                               ``period_us`` (the period end), ``done`` 0/1,
                                               ``upgraded``, ``downgraded``, ``kept``
``tiers:last``                         string  the last period a run claimed:
                                               ``<period_us>|<run_id>``
``codebatches``                        list    coupon code batch ids in creation order
``codebatch:<batch_id>``               hash    a code batch: ``fp`` (request fingerprint),
                                               ``body`` (the CodeBatch, JSON), ``created_us``,
                                               ``generated`` (codes so far), ``collisions``;
                                               on a cluster also ``seed``, ``cursor`` and
                                               ``active`` (:mod:`server.store.redis.
                                               code_claims`)
``codebatch:<batch_id>:codes``         list    the batch's codes in generation order
``usage``                              hash    global offer counters: ``u:<offer>`` uses (all
                                               members and guests), ``b:<offer>`` budget spent
                                               in minor units, net of cancels and returns
``ledger``                             stream  one entry per commit, cancel, return and
                                               adjustment; entry id ``<seq>-1``; fields
                                               ``kind``, ``entry_id``, ``transaction_id``,
                                               ``member_id``, ``at_us``, ``body`` (a
                                               LedgerEntry of ledger.proto; msgpack or JSON
                                               when written before; line detail, funding)
``ledger:seq``                         string  the last ledger sequence number (INCR)
``rules:seq``                          string  the last rule-set version number (INCR)
``rules:v:<version>``                  hash    ``rules`` (RuleSet protobuf), ``published_at``
                                               (ISO 8601), ``note``
``rules:current``                      string  the current version (0 or absent = none)
``rules:catalogue``                    string  the catalogue as Parquet
``rules:catalogue:stamp``              string  bumped on every catalogue import
``rules:events``                       pub/sub "version <n>" or "catalogue <stamp>" after
                                               every publish, activation or import
``ctr:{<name>}``                       hash    a global counter on a cluster
                                               (:mod:`server.store.redis.reservations`;
                                               ``o:<offer>``, ``c:<code>``, ``u:<offer>``):
                                               counted fields, ``p+:<f>``/``p-:<f>`` pending
``ctr:{<name>}:r:<tx>``                hash    a reservation: ``s`` r/c/x (held, confirmed,
                                               released), ``h`` home, ``until``, ``o:<f>``
                                               deltas (the tx TTL)
``ctr:{<name>}:pending``               zset    reservations held, scored by deadline (us)
``ctr:names``                          set     the counters a store reserved on (the sweep
                                               reads their pending sets)
``fate:{<home>}:<tx>``                 string  ``applied`` or ``aborted``: the first decision
                                               stands (the tx TTL)
``sync`` / ``sync:{<home>}``           string  scratch, written (60 s TTL) before a retry's
                                               stored outcome waits for replicas
=====================================  ======  ===============================================

Slots (Redis Cluster; a script only touches keys of one slot, declared in ``KEYS``):

- a home slot, tag ``{s<k>}`` (:meth:`Keys.home`: ``k`` = crc32 of the member id, or of a
  guest transaction's id, modulo :data:`CLUSTER_SHARDS`): the member ``m:{s<k>}:<member>``,
  ``lease:``, ``wake:``, ``mlist:`` likewise, the transactions ``tx:{s<k>}:<tx>``, returns
  ``ret:{s<k>}:<id>``, adjustments ``adj:{s<k>}:<id>``, the fates of commit attempts
  ``fate:{s<k>}:<tx>#<nonce>`` and the home's ledger shard ``ledger:{s<k>}`` with its
  ``ledger:{s<k>}:seq`` (the last clock reading, :mod:`server.store.redis.ledger`);
- ``txid:{<tx>}``: the home claimed for a transaction id (string, the tx TTL);
- each global counter its own slot, tag ``{<name>}``: ``ctr:{o:<offer>}`` (fields ``u`` uses,
  ``b`` budget spent: the ``usage`` hash's on a single Redis), ``ctr:{c:<code>}`` (the code's
  hash, fields as ``code:<code>``'s) with their reservations and pending sets;
- the registry, tag ``{rules}``: ``<prefix>{rules}:seq``, ``:v:<n>``, ``:current``,
  ``:catalogue``, ``:catalogue:stamp``, ``:events``;
- an offer's units hash is the counter ``ctr:{u:<offer>}`` on a cluster (its own slot, with
  its reservations and pending set: :mod:`server.store.redis.unit_scripts`);
- a shopping list id its own slot, ``list:{<list_id>}`` (claimed there, then bound in the
  member's home slot: :mod:`server.store.redis.lists`);
- tier runs, tag ``{tiers}``: ``tierrun:{tiers}:<run>`` (the claim: period and ``done``) and
  ``tiers:{tiers}:last``; each home slot counts what a run wrote there in
  ``tierrun:{s<k>}:<run>`` (:mod:`server.store.redis.tiers`);
- the code batches, tag ``{batches}``: ``<prefix>{batches}:codebatches``,
  ``<prefix>{batches}:codebatch:<id>`` and ``:codes`` (one slot, so a batch's bookkeeping is
  one script); each code stays its own slot, ``ctr:{c:<code>}``, claimed for its batch there
  first (fields ``batch``, ``cand`` only, not yet redeemable) and activated once the batch
  lists it (:mod:`server.store.redis.code_claims`).
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import NamedTuple

DEFAULT_PREFIX = "loyalty:"
# a cluster's home slots (tags ``{s0}`` .. ``{s<n-1>}``): every member and guest transaction
# lives in one, with its ledger shard; enough of them to spread over any practical cluster
CLUSTER_SHARDS = 256


class QuotePrefixes(NamedTuple):
    """Prefixes of the keys a quote reads (:attr:`Keys.quote_prefixes`)."""

    member: str  # m:{<member>} (m:{s<k>}:<member> on a cluster)
    code: str  # code:<code> (ctr:{c:<code>})
    usage: str  # the usage hash (each offer's ctr:{o:<offer>})
    units: str  # units:<offer> (ctr:{u:<offer>})


@dataclass(frozen=True, slots=True)
class Keys:
    prefix: str = DEFAULT_PREFIX
    # a Redis Cluster (RedisSettings.cluster): the registry's keys share the ``{rules}`` tag;
    # on a single Redis they keep the names above (existing data stays where it is)
    cluster: bool = False

    @property
    def shards(self) -> int:
        """How many ledger streams (home slots): 1 on a single Redis."""
        return CLUSTER_SHARDS if self.cluster else 1

    def home(self, member_id: str) -> str:
        """The hash tag of a member's home slot (on a single Redis the member id itself, the
        tag its keys always had); a guest transaction's home is its transaction id's."""
        if not self.cluster:
            return member_id
        return f"s{zlib.crc32(member_id.encode()) % CLUSTER_SHARDS}"

    def _m(self, kind: str, member_id: str) -> str:
        if self.cluster:
            return f"{self.prefix}{kind}:{{{self.home(member_id)}}}:{member_id}"
        return f"{self.prefix}{kind}:{{{member_id}}}"

    def _at(self, kind: str, home: str, name: str) -> str:
        """A key of ``home``'s slot on a cluster; its old untagged name on a single Redis."""
        if self.cluster:
            return f"{self.prefix}{kind}:{{{home}}}:{name}"
        return f"{self.prefix}{kind}:{name}"

    def member(self, member_id: str) -> str:
        return self._m("m", member_id)

    def lease(self, member_id: str) -> str:
        return self._m("lease", member_id)

    def wake(self, member_id: str) -> str:
        return self._m("wake", member_id)

    def tx(self, transaction_id: str, home: str = "") -> str:
        return self._at("tx", home, transaction_id)

    def tx_home(self, transaction_id: str) -> str:
        """On a cluster: the claim ``txid:{<tx>}`` -> the home of the transaction's keys."""
        return f"{self.prefix}txid:{{{transaction_id}}}"

    def ret(self, return_id: str, home: str = "") -> str:
        return self._at("ret", home, return_id)

    def adj(self, adjustment_id: str, home: str = "") -> str:
        return self._at("adj", home, adjustment_id)

    def code(self, code: str) -> str:
        # on a cluster a code's hash is its global counter (field ``left``), its own slot
        return self.counter(f"c:{code}") if self.cluster else f"{self.prefix}code:{code}"

    def units(self, offer_id: str) -> str:
        """An offer's units hash; on a cluster the global counter ``ctr:{u:<offer>}``
        (:mod:`server.store.redis.unit_scripts`)."""
        if self.cluster:
            return self.counter(f"u:{offer_id}")
        return f"{self.prefix}units:{offer_id}"

    def shopping_list(self, list_id: str) -> str:
        # on a cluster each list id is its own slot (server.store.redis.lists)
        if self.cluster:
            return f"{self.prefix}list:{{{list_id}}}"
        return f"{self.prefix}list:{list_id}"

    def member_list(self, member_id: str) -> str:
        return self._m("mlist", member_id)

    def tier_run(self, run_id: str) -> str:
        if self.cluster:
            return f"{self.prefix}tierrun:{{tiers}}:{run_id}"
        return f"{self.prefix}tierrun:{run_id}"

    def tier_counts(self, run_id: str, home: str) -> str:
        """On a cluster: what a tier run wrote in ``home``'s slot (``upgraded``,
        ``downgraded``, ``kept``), counted by the same script that writes the members."""
        return f"{self.prefix}tierrun:{{{home}}}:{run_id}"

    @property
    def tier_last(self) -> str:
        if self.cluster:
            return f"{self.prefix}tiers:{{tiers}}:last"
        return f"{self.prefix}tiers:last"

    def member_pattern(self) -> str:
        """A ``SCAN`` pattern matching every member document's key (and nothing else)."""
        head = f"{self.prefix}m:{{".replace("[", "\\[")
        return head + "*"

    def member_of(self, key: str) -> str:
        """The member id of a member document's key (:meth:`member`)."""
        rest = key[len(self.prefix) + 2 :]  # "{<member>}", or "{s<k>}:<member>" on a cluster
        return rest.partition("}:")[2] if self.cluster else rest[1:-1]

    @property
    def _batches(self) -> str:
        """Where code batches' keys start: on a cluster they share the ``{batches}`` tag."""
        return f"{self.prefix}{{batches}}:" if self.cluster else self.prefix

    def code_batch(self, batch_id: str) -> str:
        return f"{self._batches}codebatch:{batch_id}"

    def code_batch_codes(self, batch_id: str) -> str:
        return f"{self._batches}codebatch:{batch_id}:codes"

    @property
    def code_batches(self) -> str:
        return f"{self._batches}codebatches"

    @property
    def usage(self) -> str:
        return f"{self.prefix}usage"

    @property
    def ledger(self) -> str:
        return f"{self.prefix}ledger"

    @property
    def ledger_seq(self) -> str:
        return f"{self.prefix}ledger:seq"

    def ledger_of(self, home: str) -> tuple[str, str]:
        """The ledger stream and sequence key that ``home``'s writes append to: on a cluster
        the home slot's own (``ledger:{s<k>}``), on a single Redis the one ledger."""
        if not self.cluster:
            return self.ledger, self.ledger_seq
        return f"{self.prefix}ledger:{{{home}}}", f"{self.prefix}ledger:{{{home}}}:seq"

    def ledgers(self) -> list[str]:
        """Every ledger stream (one per home slot on a cluster)."""
        if not self.cluster:
            return [self.ledger]
        return [self.ledger_of(f"s{i}")[0] for i in range(CLUSTER_SHARDS)]

    @property
    def _rules(self) -> str:
        return f"{self.prefix}{{rules}}" if self.cluster else f"{self.prefix}rules"

    @property
    def quote_prefixes(self) -> QuotePrefixes:
        """What the names of the keys a quote reads start with, by family: the prefixes the
        member cache tracks (:mod:`server.store.redis.cache`)."""
        p = self.prefix
        if self.cluster:
            c = f"{p}ctr:{{"
            return QuotePrefixes(f"{p}m:{{", f"{c}c:", f"{c}o:", f"{c}u:")
        return QuotePrefixes(f"{p}m:{{", f"{p}code:", self.usage, f"{p}units:")

    # -- reservations of global counters (server.store.redis.reservations) ---------------------

    def counter(self, name: str) -> str:
        return f"{self.prefix}ctr:{{{name}}}"

    @property
    def counter_names(self) -> str:
        return f"{self.prefix}ctr:names"

    def reservation(self, name: str, transaction_id: str) -> str:
        return f"{self.prefix}ctr:{{{name}}}:r:{transaction_id}"

    def pending(self, name: str) -> str:
        return f"{self.prefix}ctr:{{{name}}}:pending"

    def sync(self, home: str) -> str:
        """A scratch key a stored outcome's retry writes before it waits for replicas
        (:func:`server.store.redis.replicas.sync`): in ``home``'s slot on a cluster."""
        return f"{self.prefix}sync:{{{home}}}" if self.cluster else f"{self.prefix}sync"

    def fate(self, home: str, transaction_id: str) -> str:
        return f"{self.prefix}fate:{{{home}}}:{transaction_id}"

    def rules_version(self, version: int) -> str:
        return f"{self._rules}:v:{version}"

    @property
    def rules_seq(self) -> str:
        return f"{self._rules}:seq"

    @property
    def rules_current(self) -> str:
        return f"{self._rules}:current"

    @property
    def catalogue(self) -> str:
        return f"{self._rules}:catalogue"

    @property
    def catalogue_stamp(self) -> str:
        return f"{self._rules}:catalogue:stamp"

    @property
    def rules_events(self) -> str:
        return f"{self._rules}:events"


def uses_field(offer_id: str) -> str:
    return f"u:{offer_id}"


def budget_field(offer_id: str) -> str:
    return f"b:{offer_id}"
