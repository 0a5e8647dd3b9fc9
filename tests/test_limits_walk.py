"""The limits' walk of a replay (engine.analytics.limits, engine.pricing.kernel.walk): period
buckets as numbers, member-period counters numbered once, and a walk whose buffer for the
baskets priced again starts too short."""

from __future__ import annotations

from datetime import UTC, date, datetime

import numpy as np
import polars as pl
from hypothesis import given
from hypothesis import strategies as st

import engine
from engine.analytics.limits import Limiter, offer_limits
from engine.analytics.replay import basket_frames, coupon_offers, price_chunk, reversal_events
from engine.analytics.simulate import compare
from engine.pricing import layout as L
from engine.pricing.kernel.tally import tally_chunk
from engine.pricing.kernel.walk import splice_rows, walk_limits
from engine.pricing.periods import period_buckets, period_key
from tests.test_simulate import COMPILED_LIMITED, RULES_LIMITED, limited  # noqa: F401

ZONES = ["UTC", "Asia/Singapore", "America/New_York", "Europe/Berlin", "Pacific/Kiritimati"]


@given(
    st.lists(
        st.datetimes(min_value=datetime(1990, 1, 1), max_value=datetime(2080, 1, 1)),
        min_size=1,
        max_size=40,
    ),
    st.sampled_from(ZONES),
)
def test_period_buckets_group_times_as_period_key_does(times, zone):
    utc = [t.replace(tzinfo=UTC) for t in times]
    local = pl.Series(utc, dtype=pl.Datetime("us", "UTC")).dt.convert_time_zone(zone)
    numbers = period_buckets(local.dt.date().cast(pl.Int64).to_numpy())
    for period in range(4):
        keys = [period_key(period, t) for t in local.to_list()]
        pairs = set(zip(keys, numbers[:, period].tolist(), strict=True))
        # one number per key and one key per number
        assert len({k for k, _ in pairs}) == len(pairs) == len({n for _, n in pairs})


def test_period_buckets_across_a_year_end_and_an_iso_week_of_two_years():
    days = [date(2026, 12, 31), date(2027, 1, 1), date(2027, 1, 4), date(1969, 12, 29)]
    b = period_buckets(np.array([(d - date(1970, 1, 1)).days for d in days]))
    assert b[0, 1] + 1 == b[1, 1] and b[0, 2] == b[1, 2] != b[2, 2]  # ISO week 2026-53
    assert b[1, 3] == b[0, 3] + 1 == 2027 * 12 and (b[:, 0] == 0).all()
    assert b[3, 2] == b[3, 1] == (date(1969, 12, 29) - date(1, 1, 1)).days  # a Monday


def test_counters_keep_their_numbers_from_batch_to_batch():
    limiter = Limiter(COMPILED_LIMITED, offer_limits(COMPILED_LIMITED), [])
    first = limiter.numbered(np.array([50, 7, 50, 9], dtype=np.int64))
    assert first.tolist() == [2, 0, 2, 1]  # numbered in code order, once each
    again = limiter.numbered(np.array([9, 8, 7, 1 << 60], dtype=np.int64))
    assert again.tolist() == [1, 3, 0, 4]  # known codes keep theirs, new ones come after
    assert len(limiter.mine) >= 5


def test_a_member_counter_is_per_member_slot_and_period():
    limiter = Limiter(COMPILED_LIMITED, offer_limits(COMPILED_LIMITED), [])
    month = 3  # PERIOD_MONTH
    buckets = np.zeros((4, 4), dtype=np.int64)
    buckets[:, month] = [100, 100, 101, 100]
    keys = limiter.keys(["a", "b", "a", ""], buckets)
    j = limiter.slot_of[COMPILED_LIMITED.offer_index["panadol-coupon"]]
    a_now, b_now, a_next, nobody = keys[:, j].tolist()
    assert len({a_now, b_now, a_next}) == 3 and nobody == -1
    assert limiter.keys(["b"], buckets[:1])[0, j] == b_now
    # every slot with a member limit has its own counters; one without has none
    per_member = limiter.caps[:, 0] > 0
    assert (keys[:3, ~per_member] == -1).all()
    assert len(set(keys[:3, per_member].ravel().tolist())) == 3 * per_member.sum()


def test_the_limits_walk_kernel_grows_its_row_buffer_and_gives_the_same_result(limited):  # noqa: F811
    lines, baskets = basket_frames(limited, coupon_offers(RULES_LIMITED))
    events = reversal_events(limited)
    limits = offer_limits(COMPILED_LIMITED)
    outs, limiters = [], []
    for size in (1, 4096):  # one row: the first basket priced again does not fit
        limiter = Limiter(COMPILED_LIMITED, limits, events)
        limiter.ov_rows = np.empty((size, L.ROW_COLS), dtype=np.int64)
        enc, out = price_chunk(COMPILED_LIMITED, lines, baskets)
        outs.append(limiter.walk(enc, out, baskets, lines["line_id"]))
        limiters.append(limiter)
    short, long = outs
    assert len(limiters[0].ov_rows) > 1  # it grew
    np.testing.assert_array_equal(short.rows, long.rows)
    np.testing.assert_array_equal(short.row_off, long.row_off)
    np.testing.assert_array_equal(short.counts, long.counts)
    np.testing.assert_array_equal(short.line_out, long.line_out)
    np.testing.assert_array_equal(limiters[0].uses, limiters[1].uses)
    np.testing.assert_array_equal(limiters[0].spent, limiters[1].spent)
    # the walk changed something: priced without limits, the coupon gives more
    enc, free = price_chunk(COMPILED_LIMITED, lines, baskets)
    assert free.rows.shape != long.rows.shape or (free.rows != long.rows).any()


def test_warm_up_compiles_the_walk_for_the_arguments_a_simulation_passes(limited):  # noqa: F811
    engine.warm_up()
    kernels = (walk_limits, splice_rows, tally_chunk)
    before = [list(k.signatures) for k in kernels]
    result = compare(COMPILED_LIMITED, COMPILED_LIMITED, limited)
    assert result.current.discount_minor > 0
    assert [list(k.signatures) for k in kernels] == before
