"""The embedded store's SQLite schema, in one place, created (and later migrated) on open.

Times are INTEGER microseconds since the Unix epoch, UTC (``*_us``); money is INTEGER minor
units (``*_minor``); points are INTEGER.

Tables
------
schema_version        (version PK, applied_us) — one row per applied schema version. Rule-set
                      versions and the catalogue will get their own tables here (registry).
members               member_id PK; profile (tier, segments JSON list, birthday_month/day,
                      enrolled_on ISO date, consent_* 0/1); points_debt (points owed after
                      returns, paid from the next lots); lifetime_spend_minor; legacy_lots 1 =
                      the lots were stored before they merged (v1): the next commit rounds
                      their expiries up to the rule set's buckets, merges them and sets 0;
                      version (v3), bumped by every change to the member's profile, points,
                      spend, coupons or uses: a commit applies only on the version it read;
                      attributes (v8: JSON {name: [tag, value]}, server/store/member_attributes.py);
                      tier_floor (v10: the tier held before commits raised it, NULL = not
                      raised since; server/store/policy.py), requalified_us (v10: the last
                      requalification period end applied, 0 = none; server/store/tiers.py).
point_lots            lot_id PK (AUTOINCREMENT, never reused); member_id; points left;
                      earned/available/expires (_us; expires NULL = never); source (the
                      transaction, adjustment or "cancel:<tx>"/"return:<id>" that created it).
                      One row per lot key (server/store/points.py: a pending lot per
                      availability and expiry, an available one per expiry): earned points join
                      the row of their bucket. A drained row is deleted (burn records keep the
                      lot's expiry, not a reference), so a member has as many rows as live lots.
member_spend          (member_id, start_us) PK; end_us; amount_minor = qualifying spend of the
                      commits made in [start, end) (a day or month of the rule-set zone), net
                      of their returns. Rolling spend = sum of the buckets ending inside the
                      window; buckets ending before it are deleted at the next commit.
wallet_coupons        coupon_id PK ("<issue_id>:<member_id>"); member_id; offer_id; uses_left;
                      valid_from_us/valid_until_us (until exclusive); issue_id; uses_issued;
                      personalised 0/1 (v4: needs marketing and automated-decisions consent);
                      status ("ACTIVE" | "REVOKED"), revoked_reason, revoked_us (NULL while
                      active): set by upsert_member when consent is withdrawn, never undone.
codes                 code PK; offer_id; uses_left; uses_per_code; per_member 0/1;
                      valid_from_us/valid_until_us; batch_id (v5; NULL = created outside a
                      batch; index codes_batch, whose rowid order is generation order);
                      last_tx, last_us (v5: the last commit that used the code, NULL = none);
                      member_id (v6: the only member who may use it; NULL = anyone).
code_batches          batch_id PK (v5); seq (creation order); fingerprint (of the request);
                      body (the CodeBatch, JSON); created_us; generated (codes so far);
                      collisions (drawn codes that existed and were drawn again).
code_redemptions      (code, member_id) PK; transaction_id — per-member codes only.
offer_usage           offer_id PK; uses (transactions that applied it, all members and guests);
                      budget_spent_minor (discount given, net of returns and cancels).
member_offer_usage    (member_id, offer_id, period_key) PK; uses. period_key: "E" (ever),
                      "D2025-03-12", "W2025-11" (ISO week), "M2025-03", in the rule-set zone.
transactions          transaction_id PK; fingerprint; member_id (NULL = guest); status
                      ("committed" | "cancelled"); committed_us; outcome (CommitOutcome,
                      returned verbatim on retry); earned_lot_id (the lot the earned points
                      went to, shared with the other earns of its bucket); cancel_outcome.
tx_lines              (transaction_id, idx) PK; line_id; sku; quantity; gross/net/tender_minor;
                      points (attributed earned points); redeemed (points tender in points,
                      allocated by tender); returned_qty; delivery (v11: 1 = the delivery
                      charge, Line.delivery). Every reversal amount is derived from
                      these and returned_qty by the cumulative rule, so nothing else is stored.
tx_discounts          (transaction_id, idx, seq) PK; offer_id; funder_id; amount/funded_minor.
tx_offers             (transaction_id, offer_id) PK; funder_id; discount/funded_minor; points;
                      period_key (member limit bucket counted, NULL = not counted); coupon_id /
                      code consumed ("" = none).
tx_burns              (transaction_id, seq) PK; lot_id; points burned; expires_us of that lot;
                      restored (points given back so far).
offer_units           (offer_id, scope) PK (v9); units discounted by committed transactions, net
                      of cancels: scope "" = all stores, "s:<store_id>" = one store (offers
                      with units_per_store only). server/store/units.py.
unit_reservations     reservation_id PK (v9: "<issue_id>:<member_id>", the wallet coupon's id);
                      offer_id; member_id; units still held; reserved (units at issue);
                      until_us (lapses then: availability skips it, nothing sweeps).
returns               return_id PK; transaction_id; fingerprint; outcome.
adjustments           adjustment_id PK; fingerprint; outcome.
tier_runs             run_id PK (v10); period_us (the period end requalified); done 0/1;
                      upgraded, downgraded, kept (members so far, written with each change).
shopping_lists        list_id PK (v7: "SL-" + 26 random base-32 characters,
                      server/store/lists.py); member_id UNIQUE (one list id per member, kept);
                      created_us.
ledger                seq PK AUTOINCREMENT; kind; entry_id; transaction_id; member_id; at_us;
                      body (the LedgerEntry, its seq 0).

Outcomes and ledger bodies are BLOBs of the messages of loyalty/v1/ledger.proto
(server/store/stored.py): a transaction's outcome a CommitRecord with the CommitResponse bytes
it answered, a cancel's or a return's a ReversalRecord, an adjustment's an AdjustRecord, a ledger
body a LedgerEntry. Rows written before are msgpack BLOBs or JSON text, still read
(server/store/legacy.py), never rewritten.

Versions: 1 = one lot and one spend row per commit; 2 = lots and spend by bucket; 3 = members
have a version (optimistic commits, server/store/checkout.py); 4 = wallet coupons say whether
they are personalised and whether they were revoked; 5 = code batches (batch and last
redemption on codes, code_batches); 6 = a code may be bound to one member; 7 = shopping-list
ids; 8 = members have typed attributes; 9 = unit caps and reservations; 10 = tier
requalification (tier_floor, requalified_us, tier_runs). An older file is migrated on open, in
the same transaction that records the new version (:data:`_V1_TO_V2`, :data:`_V2_TO_V3`,
:data:`_V3_TO_V4`, :data:`_V4_TO_V5`, :data:`_V5_TO_V6`, :data:`_V6_TO_V7`, :data:`_V7_TO_V8`,
:data:`_V8_TO_V9`, :data:`_V9_TO_V10`).
"""

from __future__ import annotations

import re
import sqlite3

SCHEMA_VERSION = 11

_SCHEMA = """
CREATE TABLE IF NOT EXISTS schema_version (
    version INTEGER PRIMARY KEY, applied_us INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS members (
    member_id TEXT PRIMARY KEY, tier TEXT NOT NULL DEFAULT '', segments TEXT NOT NULL DEFAULT '[]',
    birthday_month INTEGER NOT NULL DEFAULT 0, birthday_day INTEGER NOT NULL DEFAULT 0,
    enrolled_on TEXT, consent_marketing INTEGER NOT NULL DEFAULT 0,
    consent_automated INTEGER NOT NULL DEFAULT 0, consent_third_party INTEGER NOT NULL DEFAULT 0,
    points_debt INTEGER NOT NULL DEFAULT 0, lifetime_spend_minor INTEGER NOT NULL DEFAULT 0,
    updated_us INTEGER NOT NULL, legacy_lots INTEGER NOT NULL DEFAULT 0,
    version INTEGER NOT NULL DEFAULT 0, attributes TEXT NOT NULL DEFAULT '{}',
    tier_floor TEXT, requalified_us INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS point_lots (
    lot_id INTEGER PRIMARY KEY AUTOINCREMENT, member_id TEXT NOT NULL, points INTEGER NOT NULL,
    earned_us INTEGER NOT NULL, available_us INTEGER NOT NULL, expires_us INTEGER,
    source TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS point_lots_member ON point_lots (member_id, points);
CREATE TABLE IF NOT EXISTS member_spend (
    member_id TEXT NOT NULL, start_us INTEGER NOT NULL, end_us INTEGER NOT NULL,
    amount_minor INTEGER NOT NULL, PRIMARY KEY (member_id, start_us));
CREATE TABLE IF NOT EXISTS wallet_coupons (
    coupon_id TEXT PRIMARY KEY, member_id TEXT NOT NULL, offer_id TEXT NOT NULL,
    uses_left INTEGER NOT NULL, valid_from_us INTEGER NOT NULL, valid_until_us INTEGER NOT NULL,
    issue_id TEXT NOT NULL, uses_issued INTEGER NOT NULL,
    personalised INTEGER NOT NULL DEFAULT 0, status TEXT NOT NULL DEFAULT 'ACTIVE',
    revoked_reason TEXT NOT NULL DEFAULT '', revoked_us INTEGER);
CREATE INDEX IF NOT EXISTS wallet_member ON wallet_coupons (member_id, offer_id);
CREATE TABLE IF NOT EXISTS codes (
    code TEXT PRIMARY KEY, offer_id TEXT NOT NULL, uses_left INTEGER NOT NULL,
    uses_per_code INTEGER NOT NULL, per_member INTEGER NOT NULL,
    valid_from_us INTEGER NOT NULL, valid_until_us INTEGER NOT NULL,
    batch_id TEXT, last_tx TEXT, last_us INTEGER, member_id TEXT);
CREATE INDEX IF NOT EXISTS codes_batch ON codes (batch_id);
CREATE TABLE IF NOT EXISTS code_batches (
    batch_id TEXT PRIMARY KEY, seq INTEGER NOT NULL, fingerprint TEXT NOT NULL,
    body TEXT NOT NULL, created_us INTEGER NOT NULL, generated INTEGER NOT NULL DEFAULT 0,
    collisions INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS code_redemptions (
    code TEXT NOT NULL, member_id TEXT NOT NULL, transaction_id TEXT NOT NULL,
    PRIMARY KEY (code, member_id));
CREATE TABLE IF NOT EXISTS offer_usage (
    offer_id TEXT PRIMARY KEY, uses INTEGER NOT NULL DEFAULT 0,
    budget_spent_minor INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS member_offer_usage (
    member_id TEXT NOT NULL, offer_id TEXT NOT NULL, period_key TEXT NOT NULL,
    uses INTEGER NOT NULL, PRIMARY KEY (member_id, offer_id, period_key));
CREATE TABLE IF NOT EXISTS transactions (
    transaction_id TEXT PRIMARY KEY, fingerprint TEXT NOT NULL, member_id TEXT,
    status TEXT NOT NULL, committed_us INTEGER NOT NULL, outcome TEXT NOT NULL,
    earned_lot_id INTEGER, cancel_outcome TEXT);
CREATE TABLE IF NOT EXISTS tx_lines (
    transaction_id TEXT NOT NULL, idx INTEGER NOT NULL, line_id TEXT NOT NULL,
    sku TEXT NOT NULL, quantity INTEGER NOT NULL, gross_minor INTEGER NOT NULL,
    net_minor INTEGER NOT NULL, tender_minor INTEGER NOT NULL, points INTEGER NOT NULL,
    redeemed INTEGER NOT NULL, returned_qty INTEGER NOT NULL DEFAULT 0,
    delivery INTEGER NOT NULL DEFAULT 0, PRIMARY KEY (transaction_id, idx));
CREATE TABLE IF NOT EXISTS tx_discounts (
    transaction_id TEXT NOT NULL, idx INTEGER NOT NULL, seq INTEGER NOT NULL,
    offer_id TEXT NOT NULL, funder_id TEXT NOT NULL, amount_minor INTEGER NOT NULL,
    funded_minor INTEGER NOT NULL, PRIMARY KEY (transaction_id, idx, seq));
CREATE TABLE IF NOT EXISTS tx_offers (
    transaction_id TEXT NOT NULL, offer_id TEXT NOT NULL, funder_id TEXT NOT NULL,
    discount_minor INTEGER NOT NULL, funded_minor INTEGER NOT NULL, points INTEGER NOT NULL,
    period_key TEXT, coupon_id TEXT NOT NULL, code TEXT NOT NULL,
    PRIMARY KEY (transaction_id, offer_id));
CREATE TABLE IF NOT EXISTS tx_burns (
    transaction_id TEXT NOT NULL, seq INTEGER NOT NULL, lot_id INTEGER NOT NULL,
    points INTEGER NOT NULL, expires_us INTEGER, restored INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (transaction_id, seq));
CREATE TABLE IF NOT EXISTS returns (
    return_id TEXT PRIMARY KEY, transaction_id TEXT NOT NULL, fingerprint TEXT NOT NULL,
    outcome TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS adjustments (
    adjustment_id TEXT PRIMARY KEY, fingerprint TEXT NOT NULL, outcome TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS shopping_lists (
    list_id TEXT PRIMARY KEY, member_id TEXT NOT NULL UNIQUE, created_us INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS offer_units (
    offer_id TEXT NOT NULL, scope TEXT NOT NULL, units INTEGER NOT NULL,
    PRIMARY KEY (offer_id, scope));
CREATE TABLE IF NOT EXISTS unit_reservations (
    reservation_id TEXT PRIMARY KEY, offer_id TEXT NOT NULL, member_id TEXT NOT NULL,
    units INTEGER NOT NULL, reserved INTEGER NOT NULL, until_us INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS unit_reservations_offer ON unit_reservations (offer_id, until_us);
CREATE TABLE IF NOT EXISTS tier_runs (
    run_id TEXT PRIMARY KEY, period_us INTEGER NOT NULL, done INTEGER NOT NULL DEFAULT 0,
    upgraded INTEGER NOT NULL DEFAULT 0, downgraded INTEGER NOT NULL DEFAULT 0,
    kept INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS ledger (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, kind TEXT NOT NULL, entry_id TEXT NOT NULL,
    transaction_id TEXT NOT NULL, member_id TEXT, at_us INTEGER NOT NULL, body TEXT NOT NULL);
"""


# v1 -> v2. Members holding lots are marked for their next commit, which knows the rule set's
# buckets; drained lots go; each spend row becomes a 1 µs span (rows of one instant summed), which
# that commit merges into its bucket (server/store/snapshot.py add_spend).
_V1_TO_V2 = """
ALTER TABLE members ADD COLUMN legacy_lots INTEGER NOT NULL DEFAULT 0;
UPDATE members SET legacy_lots = 1
    WHERE member_id IN (SELECT member_id FROM point_lots WHERE points > 0);
DELETE FROM point_lots WHERE points <= 0;
CREATE TABLE member_spend_v2 (
    member_id TEXT NOT NULL, start_us INTEGER NOT NULL, end_us INTEGER NOT NULL,
    amount_minor INTEGER NOT NULL, PRIMARY KEY (member_id, start_us));
INSERT INTO member_spend_v2
    SELECT member_id, at_us, at_us + 1, SUM(amount_minor) FROM member_spend
    GROUP BY member_id, at_us;
DROP TABLE member_spend;
ALTER TABLE member_spend_v2 RENAME TO member_spend;
"""


# v2 -> v3: a member's version starts at 0 (no commit has read one yet).
_V2_TO_V3 = "ALTER TABLE members ADD COLUMN version INTEGER NOT NULL DEFAULT 0"


# v3 -> v4: every coupon stored before is not personalised (issued by hand) and active.
_V3_TO_V4 = """
ALTER TABLE wallet_coupons ADD COLUMN personalised INTEGER NOT NULL DEFAULT 0;
ALTER TABLE wallet_coupons ADD COLUMN status TEXT NOT NULL DEFAULT 'ACTIVE';
ALTER TABLE wallet_coupons ADD COLUMN revoked_reason TEXT NOT NULL DEFAULT '';
ALTER TABLE wallet_coupons ADD COLUMN revoked_us INTEGER
"""


# v4 -> v5: code batches; codes stored before belong to no batch and show no last redemption.
_V4_TO_V5 = """
ALTER TABLE codes ADD COLUMN batch_id TEXT;
ALTER TABLE codes ADD COLUMN last_tx TEXT;
ALTER TABLE codes ADD COLUMN last_us INTEGER;
CREATE INDEX IF NOT EXISTS codes_batch ON codes (batch_id);
CREATE TABLE IF NOT EXISTS code_batches (
    batch_id TEXT PRIMARY KEY, seq INTEGER NOT NULL, fingerprint TEXT NOT NULL,
    body TEXT NOT NULL, created_us INTEGER NOT NULL, generated INTEGER NOT NULL DEFAULT 0,
    collisions INTEGER NOT NULL DEFAULT 0)
"""


# v5 -> v6: codes stored before are bound to no member.
_V5_TO_V6 = "ALTER TABLE codes ADD COLUMN member_id TEXT"


# v6 -> v7: shopping-list ids; members get one at their next ListOffers.
_V6_TO_V7 = """
CREATE TABLE IF NOT EXISTS shopping_lists (
    list_id TEXT PRIMARY KEY, member_id TEXT NOT NULL UNIQUE, created_us INTEGER NOT NULL)
"""


# v7 -> v8: members stored before have no attributes.
_V7_TO_V8 = "ALTER TABLE members ADD COLUMN attributes TEXT NOT NULL DEFAULT '{}'"


# v8 -> v9: unit caps and reservations (no offer had units counted before).
_UNITS = """
CREATE TABLE IF NOT EXISTS offer_units (
    offer_id TEXT NOT NULL, scope TEXT NOT NULL, units INTEGER NOT NULL,
    PRIMARY KEY (offer_id, scope));
CREATE TABLE IF NOT EXISTS unit_reservations (
    reservation_id TEXT PRIMARY KEY, offer_id TEXT NOT NULL, member_id TEXT NOT NULL,
    units INTEGER NOT NULL, reserved INTEGER NOT NULL, until_us INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS unit_reservations_offer ON unit_reservations (offer_id, until_us)
"""
_V8_TO_V9 = _UNITS


# v9 -> v10: tier requalification; members stored before were raised by no commit since (their
# tier is their floor) and were never requalified.
_V9_TO_V10 = """
ALTER TABLE members ADD COLUMN tier_floor TEXT;
ALTER TABLE members ADD COLUMN requalified_us INTEGER NOT NULL DEFAULT 0;
CREATE TABLE IF NOT EXISTS tier_runs (
    run_id TEXT PRIMARY KEY, period_us INTEGER NOT NULL, done INTEGER NOT NULL DEFAULT 0,
    upgraded INTEGER NOT NULL DEFAULT 0, downgraded INTEGER NOT NULL DEFAULT 0,
    kept INTEGER NOT NULL DEFAULT 0)
"""

# v10 -> v11: delivery lines (Line.delivery); every line stored before was goods.
_V10_TO_V11 = "ALTER TABLE tx_lines ADD COLUMN delivery INTEGER NOT NULL DEFAULT 0"

_ADD_COLUMN = re.compile(r"\s*ALTER TABLE (\w+) ADD COLUMN (\w+)", re.IGNORECASE)


def _run(conn: sqlite3.Connection, script: str) -> None:
    """Run a migration's statements; a column the file has already is kept (a file taken back
    to an older version by hand keeps its newer columns), so every step can run again."""
    for stmt in script.split(";"):
        added = _ADD_COLUMN.match(stmt)
        if added is not None:
            table, column = added.groups()
            if column in {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}:
                continue
        if stmt.strip():
            conn.execute(stmt)


def create(conn: sqlite3.Connection, now_us: int) -> None:
    """Create every table, or migrate an older file, and record the schema version, in one
    transaction (a failed migration leaves the file as it was)."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_version ("
            "version INTEGER PRIMARY KEY, applied_us INTEGER NOT NULL)"
        )
        (version,) = conn.execute("SELECT MAX(version) FROM schema_version").fetchone()
        if version is not None and version > SCHEMA_VERSION:
            raise RuntimeError(f"data written by a newer schema ({version} > {SCHEMA_VERSION})")
        if version is None:
            _run(conn, _SCHEMA)
        else:
            if version < 2:
                _run(conn, _V1_TO_V2)
            if version < 3:
                _run(conn, _V2_TO_V3)
            if version < 4:
                _run(conn, _V3_TO_V4)
            if version < 5:
                _run(conn, _V4_TO_V5)
            if version < 6:
                _run(conn, _V5_TO_V6)
            if version < 7:
                _run(conn, _V6_TO_V7)
            if version < 8:
                _run(conn, _V7_TO_V8)
            if version < 9:
                _run(conn, _V8_TO_V9)
            if version < 10:
                _run(conn, _V9_TO_V10)
            if version < 11:
                _run(conn, _V10_TO_V11)
        if version != SCHEMA_VERSION:
            conn.execute("INSERT INTO schema_version VALUES (?, ?)", (SCHEMA_VERSION, now_us))
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
