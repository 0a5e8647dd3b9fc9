"""A simulation chunk's figures (engine.analytics.scoring over kernel/tally.py) against the
same figures worked out line by line in plain Python from the decoded frames, on a synthetic
history with cancels and partial returns put in at random."""

from __future__ import annotations

import random

import numpy as np
import polars as pl

from engine.analytics.history import generate_history
from engine.analytics.replay import basket_frames, coupon_offers, price_chunk
from engine.analytics.scoring import score_part
from engine.pricing.compiler import compile_rules
from engine.pricing.frames import decode_frames
from engine.pricing.reference.rewards import allocate
from engine.pricing.rules import load_rules
from server.cli.analytics import demo_products
from tests.store_fixtures import EXAMPLES


def by_hand(res, lines: pl.DataFrame, baskets: pl.DataFrame):
    """The chunk's figures, one basket and one line at a time (docs/design.md §5)."""
    q = lines["quantity"].to_list()
    r = lines["returned"].to_list()
    line_b = lines["basket"].to_list()
    first: dict[int, int] = {}
    for i, b in enumerate(line_b):
        first.setdefault(b, i)
    cancelled = baskets["cancelled"].to_list()
    alive = [
        not cancelled[b] and sum(q[i] - r[i] for i in range(len(q)) if line_b[i] == b) > 0
        for b in range(len(baskets))
    ]
    price, points = lines["unit_price_minor"].to_list(), res.lines["points_earned"].to_list()
    tender = res.lines["points_tender_minor"].to_list()
    gross = sum(
        q[i] * price[i] - q[i] * price[i] * r[i] // q[i] for i in range(len(q)) if alive[line_b[i]]
    )
    earned = sum(points[i] - points[i] * r[i] // q[i] for i in range(len(q)) if alive[line_b[i]])
    disc = [0] * len(baskets)
    offers: dict[tuple[str, str], list] = {}
    for b, line, o, f, amount, funded in res.discounts.select(
        "basket", "line", "offer_id", "funder_id", "amount_minor", "funded_minor"
    ).iter_rows():
        i = first[b] + line
        amount -= amount * r[i] // q[i]
        funded -= funded * r[i] // q[i]
        if not alive[b] or amount <= 0:
            continue
        disc[b] += amount
        row = offers.setdefault((o, f), [set(), 0, 0])
        row[0].add(b)
        row[1] += amount
        row[2] += funded
    redeemed = 0
    for b, points_redeemed in enumerate(res.baskets["points_redeemed"].to_list()):
        if not alive[b]:
            continue
        mine = [i for i in range(len(q)) if line_b[i] == b]
        if any(r[i] for i in mine):
            shares = allocate(points_redeemed, [tender[i] for i in mine])
            points_redeemed = sum(p - p * r[i] // q[i] for p, i in zip(shares, mine, strict=True))
        redeemed += points_redeemed
    return alive, disc, gross, earned, redeemed, offers


def test_the_tally_kernel_gives_a_chunks_figures_as_worked_out_by_hand():
    catalogue, frame = demo_products()
    compiled = compile_rules(load_rules(EXAMPLES / "draft.yaml"), catalogue)
    history = generate_history(frame, members=40, months=2, seed=5)
    lines, baskets = basket_frames(history, coupon_offers(compiled.rules), ["care-600"])
    rng = random.Random(3)
    q = lines["quantity"].to_list()
    returned = [rng.choice([0, 0, 0, rng.randint(0, k)]) for k in q]
    returned[0] = q[0]  # the first basket's first line all returned
    lines = lines.with_columns(pl.Series("returned", returned, dtype=pl.Int64))
    cancelled = [rng.random() < 0.1 for _ in range(len(baskets))]
    baskets = baskets.with_columns(pl.Series("cancelled", cancelled))
    baskets = baskets.with_columns(redeem_points=pl.lit(200), available_points=pl.lit(5000))
    enc, out = price_chunk(compiled, lines, baskets)
    part = score_part(compiled, enc, out, baskets, lines)
    alive, disc, gross, earned, redeemed, offers = by_hand(
        decode_frames(compiled, enc, out, baskets, lines), lines, baskets
    )
    assert sum(r > 0 for r in returned) > 10 and any(cancelled) and redeemed > 0
    assert part.counted == sum(alive)
    assert part.totals.tolist() == [sum(d > 0 for d in disc), gross, sum(disc), earned, redeemed]
    assert part.discounts.tolist() == [d for d in disc if d > 0]
    seqs = baskets["seq"].to_list()
    assert part.discount_seqs.tolist() == [s for s, d in zip(seqs, disc, strict=True) if d > 0]
    assert part.best == max(disc) and part.best_seq == seqs[disc.index(max(disc))]
    got = {
        (o, f): (n, a, fu)
        for o, f, n, a, fu in part.by_offer.select(
            "offer_id", "funder_id", "baskets", "amount_minor", "funded_minor"
        ).iter_rows()
    }
    assert got == {k: (len(v[0]), v[1], v[2]) for k, v in offers.items()} and len(got) > 3
    versions = baskets.filter(pl.Series(alive))["ruleset_version"].value_counts()
    want = dict(versions.iter_rows())
    assert dict(part.by_version.iter_rows()) == want
    assert np.all(part.discounts > 0)
