"""Recurring offer schedules (Conditions.recurrence, engine/pricing/recurrence.py).

The RRULE subset is parsed and refused with a field path; the kernel's integer day rule is the
reference's calendar rule on every day; the local day and day of month are what the time zone
database says on every path that builds a context (checked, byte, batch, frames); pinned dates
in Asia/Shanghai and Europe/Berlin (across both DST switches); explanations carry the next
start; a gRPC server prices at two times and lists the next start on the shopping list.
"""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import grpc
import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine import load_rules
from engine.errors import Violation
from engine.pricing import layout as L
from engine.pricing.api import encode_context, price
from engine.pricing.basket import local_time_at
from engine.pricing.batch import price_batch
from engine.pricing.catalogue import Catalogue
from engine.pricing.compiler import compile_rules
from engine.pricing.constants import Reason
from engine.pricing.frames import encode_frames
from engine.pricing.kernel.checks import recurs
from engine.pricing.recurrence import (
    Freq,
    Recurrence,
    day_number,
    next_start,
    parse,
    schedule,
)
from engine.pricing.reference.core import price_reference
from engine.pricing.rules import parse_rules
from engine.pricing.types import Basket, Explanation, Line, Member
from engine.pricing.validate import validate
from loyalty.v1 import (
    campaigns_pb2,
    campaigns_pb2_grpc,
    checkout_pb2,
    checkout_pb2_grpc,
    members_pb2,
    members_pb2_grpc,
)
from server.api.app import create_server
from server.api.convert import response_from_result
from server.settings import Settings
from tests.strategies import recurrence_cases, recurrences
from tests.test_server_checkout import Clock
from tests.test_wire import both, request_of

ROOT = Path(__file__).resolve().parent.parent
BIWEEKLY = "DTSTART=20260106;FREQ=WEEKLY;INTERVAL=2;BYDAY=TU,WE"


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def rules_with(conditions: dict, timezone: str = "Asia/Shanghai", **extra) -> dict:
    """One 10%-off offer ``special`` on everything, with these conditions."""
    offer = {
        "id": "special",
        "scope": {"all": True},
        "conditions": conditions,
        "percent_off": {"percent_bps": 1000},
        **extra,
    }
    return {"timezone": timezone, "offers": [offer]}


def sold_at(at: datetime) -> Basket:
    return Basket((Line("1", "A", 1, 1000),), at)


# ---- parsing and validation ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (BIWEEKLY, (Freq.WEEKLY, 2, date(2026, 1, 6), {2, 3}, set())),
        ("FREQ=DAILY;DTSTART=20260101", (Freq.DAILY, 1, date(2026, 1, 1), set(), set())),
        (  # keys in any order and case, spaces around parts, a trailing ";"
            " freq=daily ; byday=sa,su;interval=3;DTSTART=19991231; ",
            (Freq.DAILY, 3, date(1999, 12, 31), {6, 7}, set()),
        ),
        ("FREQ=MONTHLY;DTSTART=20260131", (Freq.MONTHLY, 1, date(2026, 1, 31), set(), {31})),
        (
            "FREQ=MONTHLY;INTERVAL=2;BYMONTHDAY=15,-1;DTSTART=20260115",
            (Freq.MONTHLY, 2, date(2026, 1, 15), set(), {15, -1}),
        ),
        (
            "FREQ=WEEKLY;INTERVAL=999;DTSTART=00010101",
            (Freq.WEEKLY, 999, date(1, 1, 1), set(), set()),
        ),
    ],
)
def test_supported_rules_parse(text, expected):
    freq, interval, anchor, weekdays, monthdays = expected
    assert parse(text) == Recurrence(
        freq, interval, day_number(anchor), frozenset(weekdays), frozenset(monthdays)
    )


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("FREQ=YEARLY;DTSTART=20260101", "FREQ=YEARLY is not supported"),
        ("FREQ=HOURLY;DTSTART=20260101", "FREQ=HOURLY is not supported"),
        ("INTERVAL=2;DTSTART=20260101", "FREQ is required"),
        ("FREQ=DAILY", "DTSTART=YYYYMMDD is required when starts_at is not set"),
        ("FREQ=DAILY;DTSTART=2026-01-01", "DTSTART must be a local date YYYYMMDD"),
        ("FREQ=DAILY;DTSTART=20260230", "DTSTART must be a local date YYYYMMDD"),
        ("FREQ=DAILY;DTSTART=20260101T100000", "DTSTART must be a local date YYYYMMDD"),
        ("FREQ=DAILY;INTERVAL=0;DTSTART=20260101", "INTERVAL must be 1..999"),
        ("FREQ=DAILY;INTERVAL=1000;DTSTART=20260101", "INTERVAL must be 1..999"),
        ("FREQ=DAILY;INTERVAL=-2;DTSTART=20260101", "INTERVAL must be 1..999"),
        ("FREQ=WEEKLY;BYDAY=1MO;DTSTART=20260101", "without ordinals (got '1MO')"),
        ("FREQ=WEEKLY;BYDAY=MO,MO;DTSTART=20260101", "BYDAY repeats MO"),
        ("FREQ=MONTHLY;BYDAY=MO;DTSTART=20260101", "BYDAY is not supported with FREQ=MONTHLY"),
        ("FREQ=WEEKLY;BYMONTHDAY=1;DTSTART=20260101", "BYMONTHDAY is not supported with FREQ"),
        ("FREQ=MONTHLY;BYMONTHDAY=32;DTSTART=20260101", "BYMONTHDAY takes 1..31 or -31..-1"),
        ("FREQ=MONTHLY;BYMONTHDAY=0;DTSTART=20260101", "BYMONTHDAY takes 1..31 or -31..-1"),
        ("FREQ=MONTHLY;BYMONTHDAY=1,1;DTSTART=20260101", "BYMONTHDAY repeats 1"),
        ("FREQ=DAILY;COUNT=3;DTSTART=20260101", "COUNT is not supported (use the offer's ends_at)"),
        ("FREQ=DAILY;UNTIL=20261231;DTSTART=20260101", "UNTIL is not supported"),
        ("FREQ=DAILY;BYHOUR=10;DTSTART=20260101", "BYHOUR is not supported"),
        ("FREQ=DAILY;WKST=SU;DTSTART=20260101", "WKST is not supported"),
        ("FREQ=DAILY;FREQ=WEEKLY;DTSTART=20260101", "FREQ given twice"),
        ("RRULE:FREQ=DAILY;DTSTART=20260101", "RRULE:FREQ is not supported"),
        ("every tuesday", "'every tuesday' is not KEY=VALUE"),
        ("FREQ=DAILY;DTSTART=20260101;" + "X" * 260, "longer than 256 characters"),
    ],
)
def test_rules_outside_the_subset_are_refused_at_their_field_path(text, says):
    # given a rule set whose second offer has a recurrence outside the subset
    data = rules_with({})
    data["offers"].insert(
        0, {"id": "plain", "scope": {"all": True}, "amount_off": {"amount_minor": 1}}
    )
    data["offers"][1]["conditions"] = {"recurrence": text}
    # when it is validated
    problems = validate(parse_rules(data))
    # then one violation names the field, says what is wrong and what is supported
    assert [p.field for p in problems] == ["offers[1].conditions.recurrence"], problems
    assert says in problems[0].description
    assert "supported: FREQ=DAILY|WEEKLY|MONTHLY" in problems[0].description


def test_byday_and_weekdays_are_not_given_together():
    rules = parse_rules(rules_with({"recurrence": BIWEEKLY, "weekdays": [2]}))
    assert validate(rules) == [
        Violation(
            "offers[0].conditions.recurrence", "BYDAY and weekdays both set: give the weekdays once"
        )
    ]


def test_without_dtstart_the_anchor_is_the_local_date_of_starts_at():
    # 2026-01-05 16:30 UTC is already Tuesday 2026-01-06 in Shanghai
    rules = parse_rules(
        rules_with({"recurrence": "FREQ=WEEKLY;INTERVAL=2", "starts_at": "2026-01-05T16:30:00Z"})
    )
    assert validate(rules) == []
    row = compile_rules(rules).arrays.offer[0]
    assert row[L.O_REC_ANCHOR] == day_number(date(2026, 1, 6))
    assert row[L.O_WEEKDAYS] == 1 << 2  # WEEKLY without BYDAY: DTSTART's weekday, Tuesday


def test_the_compiler_fills_the_recurrence_columns():
    data = rules_with({"recurrence": BIWEEKLY, "from_hour": 10, "to_hour": 22})
    data["offers"].append(
        {
            "id": "month-ends",
            "scope": {"all": True},
            "conditions": {"recurrence": "FREQ=MONTHLY;BYMONTHDAY=15,-1;DTSTART=20260101"},
            "amount_off": {"amount_minor": 10},
        }
    )
    data["offers"].append({"id": "none", "scope": {"all": True}, "amount_off": {"amount_minor": 1}})
    table = compile_rules(parse_rules(data)).arrays.offer
    cols = [L.O_REC_FREQ, L.O_REC_INTERVAL, L.O_REC_ANCHOR, L.O_REC_MONTHDAYS, L.O_WEEKDAYS]
    assert table[:, cols].tolist() == [
        [Freq.WEEKLY, 2, 20459, 0, (1 << 2) | (1 << 3)],  # 20459 = 2026-01-06
        [Freq.MONTHLY, 1, 20454, (1 << 15) | (1 << 32), 0],  # -1 is bit 31 + 1
        [0, 0, 0, 0, 0],
    ]


# ---- the kernel's integer rule = the calendar rule -----------------------------------------


@settings(max_examples=150)
@given(recurrences(), st.randoms(use_true_random=False))
def test_the_kernel_day_rule_is_the_calendar_rule_on_every_day(text, rnd):
    # given a rule and days near its anchor, across years and far from 1970 both ways
    rules = parse_rules(rules_with({"recurrence": text}, timezone="UTC"))
    row = compile_rules(rules).arrays.offer
    rec = schedule(rules.offers[0].conditions, "UTC")
    assert rec is not None
    days = list(range(rec.anchor - 40, rec.anchor + 800))
    days += [rnd.randrange(-719_162, 2_932_896) for _ in range(300)]  # 0001-01-01..9999-12-31
    for day in days:
        d = date(1970, 1, 1) + timedelta(days=day)
        ctx = np.zeros(L.CTX_COLS, dtype=np.int64)
        ctx[L.C_LOCAL_DAY], ctx[L.C_MONTHDAY], ctx[L.C_WEEKDAY] = day, d.day, d.isoweekday()
        mask = int(row[0, L.O_WEEKDAYS])
        kernel = bool(recurs(row, 0, ctx)) and (mask == 0 or (mask >> d.isoweekday()) & 1 == 1)
        # then the kernel (with BYDAY in O_WEEKDAYS) says what the calendar says
        assert kernel == rec.occurs(day), (text, d)


ZONES = ["UTC", "Asia/Shanghai", "Europe/Berlin", "Asia/Kathmandu", "Pacific/Chatham"]


@pytest.mark.parametrize("zone", ZONES)
def test_local_day_and_day_of_month_are_the_time_zone_database(zone):
    # given seeded instants from 1890 to 2100 and every 7 minutes around Berlin's 2026 switches
    rng = random.Random(zone)
    instants = [rng.randrange(-2_524_521_600, 4_102_444_800) for _ in range(2_000)]
    for switch in (utc("2026-03-29T01:00"), utc("2026-10-25T01:00")):
        s = int(switch.timestamp())
        instants += range(s - 86_400, s + 86_400, 420)
    tz = ZoneInfo(zone)
    for epoch in instants:
        got = local_time_at(epoch, zone)
        local = datetime.fromtimestamp(epoch, tz)
        assert (got.day, got.monthday) == (day_number(local.date()), local.day), (zone, epoch)


@pytest.mark.parametrize("zone", ZONES)
def test_the_frames_context_is_the_checked_context(zone):
    # given baskets at seeded whole-second instants, around DST switches too
    rng = random.Random(zone)
    instants = [rng.randrange(-1_000_000_000, 4_102_444_800) for _ in range(300)]
    instants += range(1_774_746_000 - 7_200, 1_774_746_000 + 7_200, 900)  # 2026-03-29 01:00Z
    compiled = compile_rules(parse_rules(rules_with({"recurrence": BIWEEKLY}, timezone=zone)))
    at = [datetime.fromtimestamp(e, UTC) for e in instants]
    baskets = pl.DataFrame({"occurred_at": at})
    lines = pl.DataFrame({"basket": list(range(len(at))), "sku": "A", "quantity": 1})
    lines = lines.with_columns(unit_price_minor=pl.lit(100))
    # when the frames path and the checked path build their contexts
    got = encode_frames(compiled, lines, baskets).ctxs
    want = np.array([encode_context(compiled, sold_at(a)) for a in at])
    # then they are the same, every column (local day and day of month included)
    assert got.tolist() == want.tolist()


# ---- twins: kernel = reference, byte path = checked path, batch = single ---------------------


@settings(max_examples=250)
@given(recurrence_cases())
def test_kernel_equals_reference_with_recurrences(case):
    rules, catalogue, basket, member, kw = case
    expected = price_reference(rules, catalogue, basket, member, **kw)
    assert price(compile_rules(rules, catalogue), basket, member, **kw) == expected


@settings(max_examples=60)
@given(recurrence_cases(), st.lists(st.integers(-60 * 24 * 20, 60 * 24 * 20), max_size=8))
def test_the_batch_kernel_equals_the_reference_with_recurrences(case, minutes):
    # given one basket moved to many times, priced together
    rules, catalogue, basket, member, kw = case
    baskets = [
        replace(basket, occurred_at=basket.occurred_at + timedelta(minutes=m)) for m in minutes
    ]
    got = price_batch(compile_rules(rules, catalogue), baskets, [member] * len(baskets))
    assert got == [price_reference(rules, catalogue, b, member) for b in baskets]


@settings(max_examples=200)
@given(recurrence_cases())
def test_the_byte_path_answers_what_the_checked_path_answers_with_recurrences(case):
    rules, catalogue, basket, member, kw = case
    compiled = compile_rules(rules, catalogue)
    names = {o.id: o.name for o in rules.offers}
    data = request_of(basket, member.member_id if member else "", kw["redeem_points"])
    checked, fast = both(
        compiled, names, data.SerializeToString(), member, kw["coupons"], kw["limits"]
    )
    assert isinstance(checked, checkout_pb2.EvaluateResponse), checked
    assert fast == checked


# ---- pinned dates --------------------------------------------------------------------------

WINDOW = Reason.NOT_IN_TIME_WINDOW


@pytest.mark.parametrize(
    ("at", "applies", "next_at"),
    [
        ("2026-01-06T02:00", True, None),  # Tue 6 Jan 10:00 in Shanghai: the first occurrence
        ("2026-01-06T01:59", False, "2026-01-06T02:00"),  # 09:59
        ("2026-01-07T13:59", True, None),  # Wed 21:59
        ("2026-01-07T14:00", False, "2026-01-20T02:00"),  # Wed 22:00: next is two weeks on
        ("2026-01-13T04:00", False, "2026-01-20T02:00"),  # Tue of the week off
        ("2026-01-19T20:00", False, "2026-01-20T02:00"),  # Tue 04:00 local, the week on
        ("2026-01-20T04:00", True, None),
        ("2026-01-05T04:00", False, "2026-01-06T02:00"),  # Monday of DTSTART's week
        ("2025-12-23T04:00", False, "2026-01-06T02:00"),  # an "on" Tuesday before DTSTART
        ("2026-11-17T04:00", False, "2026-11-24T02:00"),  # week 45 since DTSTART's: off
        ("2026-11-25T04:00", True, None),  # week 46: Wednesday
    ],
)
def test_a_biweekly_tuesday_wednesday_special_in_shanghai(pricer, at, applies, next_at):
    data = rules_with({"recurrence": BIWEEKLY, "from_hour": 10, "to_hour": 22})
    result = pricer(data, None, sold_at(utc(at)), explain=True)
    assert [o.offer_id for o in result.offers] == (["special"] if applies else [])
    expected = () if applies else (Explanation("special", WINDOW, next_start=utc(next_at)),)
    assert result.explanations == expected


@pytest.mark.parametrize(
    ("text", "at", "applies", "next_at"),
    [
        # the 15th, all day in Shanghai: 2026-02-15 00:00 local is 02-14 16:00 UTC
        ("FREQ=MONTHLY;BYMONTHDAY=15;DTSTART=20260115", "2026-02-14T16:00", True, None),
        (
            "FREQ=MONTHLY;BYMONTHDAY=15;DTSTART=20260115",
            "2026-02-14T15:59",
            False,
            "2026-02-14T16:00",
        ),
        (
            "FREQ=MONTHLY;BYMONTHDAY=15;DTSTART=20260115",
            "2026-02-15T16:00",
            False,
            "2026-03-14T16:00",
        ),
        # without BYMONTHDAY: DTSTART's day; every second month
        ("FREQ=MONTHLY;INTERVAL=2;DTSTART=20260115", "2026-02-15T04:00", False, "2026-03-14T16:00"),
        ("FREQ=MONTHLY;INTERVAL=2;DTSTART=20260115", "2026-03-15T04:00", True, None),
        # the last day: 28 February 2026, 29 February 2028
        ("FREQ=MONTHLY;BYMONTHDAY=-1;DTSTART=20260101", "2026-02-28T04:00", True, None),
        (
            "FREQ=MONTHLY;BYMONTHDAY=-1;DTSTART=20260101",
            "2028-02-28T04:00",
            False,
            "2028-02-28T16:00",
        ),
        # the 31st skips the months without one
        (
            "FREQ=MONTHLY;BYMONTHDAY=31;DTSTART=20260101",
            "2026-04-01T04:00",
            False,
            "2026-05-30T16:00",
        ),
    ],
)
def test_monthly_days_in_shanghai(pricer, text, at, applies, next_at):
    result = pricer(rules_with({"recurrence": text}), None, sold_at(utc(at)), explain=True)
    assert [o.offer_id for o in result.offers] == (["special"] if applies else [])
    expected = () if applies else (Explanation("special", WINDOW, next_start=utc(next_at)),)
    assert result.explanations == expected


SUNDAY_NIGHTS = {
    "recurrence": "FREQ=WEEKLY;BYDAY=SU;DTSTART=20260301",
    "from_hour": 2,
    "to_hour": 4,
}


@pytest.mark.parametrize(
    ("at", "applies", "next_at"),
    [
        ("2026-03-22T01:00", True, None),  # Sunday 02:00 CET
        ("2026-03-22T03:00", False, "2026-03-29T01:00"),  # 04:00 CET
        # 29 March: 02:00 CET becomes 03:00 CEST, so the window is 01:00-02:00 UTC
        ("2026-03-28T12:00", False, "2026-03-29T01:00"),
        ("2026-03-29T00:59", False, "2026-03-29T01:00"),  # 01:59 CET
        ("2026-03-29T01:00", True, None),  # 03:00 CEST
        ("2026-03-29T02:00", False, "2026-04-05T00:00"),  # 04:00 CEST; next: 02:00 CEST
        # 25 October: 03:00 CEST becomes 02:00 CET, so hour 2 happens twice: 00:00-03:00 UTC
        ("2026-10-24T23:59", False, "2026-10-25T00:00"),
        ("2026-10-25T00:00", True, None),  # 02:00 CEST
        ("2026-10-25T01:30", True, None),  # 02:30 CET, the second time
        ("2026-10-25T02:59", True, None),  # 03:59 CET
        ("2026-10-25T03:00", False, "2026-11-01T01:00"),  # 04:00 CET
    ],
)
def test_a_berlin_sunday_night_special_across_both_dst_switches(pricer, at, applies, next_at):
    result = pricer(
        rules_with(SUNDAY_NIGHTS, timezone="Europe/Berlin"), None, sold_at(utc(at)), explain=True
    )
    assert [o.offer_id for o in result.offers] == (["special"] if applies else [])
    expected = () if applies else (Explanation("special", WINDOW, next_start=utc(next_at)),)
    assert result.explanations == expected


@pytest.mark.parametrize(
    ("at", "applies", "next_at"),
    [
        ("2026-03-28T22:59", True, None),  # Sat 28 23:59 CET: DTSTART
        ("2026-03-28T23:00", False, "2026-03-29T22:00"),  # Sunday, off; Monday starts 22:00 UTC
        ("2026-03-29T21:59", False, "2026-03-29T22:00"),  # 23:59 CEST
        ("2026-03-29T22:00", True, None),  # Monday 30 00:00 CEST
    ],
)
def test_every_other_local_day_follows_the_local_midnight_across_a_switch(
    pricer, at, applies, next_at
):
    rules = rules_with({"recurrence": "FREQ=DAILY;INTERVAL=2;DTSTART=20260328"}, "Europe/Berlin")
    result = pricer(rules, None, sold_at(utc(at)), explain=True)
    assert [o.offer_id for o in result.offers] == (["special"] if applies else [])
    expected = () if applies else (Explanation("special", WINDOW, next_start=utc(next_at)),)
    assert result.explanations == expected


def test_the_recurrence_counts_only_inside_the_fixed_window(pricer):
    # given the bi-weekly special limited to February 2026 (UTC bounds)
    cond = {
        "recurrence": BIWEEKLY,
        "starts_at": "2026-02-01T00:00:00Z",
        "ends_at": "2026-03-01T00:00:00Z",
    }
    data = rules_with(cond)
    # Tue 20 January is a day of the schedule, but before the window: next is Tue 3 February
    early = pricer(data, None, sold_at(utc("2026-01-20T04:00")), explain=True)
    assert early.explanations == (
        Explanation("special", WINDOW, next_start=utc("2026-02-02T16:00")),
    )
    assert pricer(data, None, sold_at(utc("2026-02-03T04:00"))).offers
    # after the last occurrence inside the window there is no next start
    late = pricer(data, None, sold_at(utc("2026-02-19T04:00")), explain=True)
    assert late.explanations == (Explanation("special", WINDOW),)


def test_a_schedule_that_never_comes_has_no_next_start(pricer):
    # the 30th, once a year from February: never
    never = rules_with({"recurrence": "FREQ=MONTHLY;INTERVAL=12;BYMONTHDAY=30;DTSTART=20260201"})
    result = pricer(never, None, sold_at(utc("2026-02-10T04:00")), explain=True)
    assert result.explanations == (Explanation("special", WINDOW),)


def test_other_refusals_and_fixed_windows_carry_no_next_start(pricer):
    # given a fixed window and a member-only recurring offer
    data = rules_with({"starts_at": "2026-02-01T00:00:00Z"})
    data["offers"].append(
        {
            "id": "members",
            "scope": {"all": True},
            "conditions": {"recurrence": BIWEEKLY, "member_required": True},
            "amount_off": {"amount_minor": 1},
        }
    )
    result = pricer(data, None, sold_at(utc("2026-01-06T04:00")), explain=True)
    assert result.explanations == (
        Explanation("members", Reason.MEMBER_REQUIRED),
        Explanation("special", WINDOW),
    )


def test_the_next_start_is_in_the_response_and_the_message():
    rules = parse_rules(rules_with({"recurrence": BIWEEKLY, "from_hour": 10, "to_hour": 22}))
    result = price(compile_rules(rules), sold_at(utc("2026-01-13T04:00")), explain=True)
    (e,) = response_from_result(result, 1, {}, False).explanations
    assert e.reason == "NOT_IN_TIME_WINDOW"
    assert e.next_start.ToDatetime(tzinfo=UTC) == utc("2026-01-20T02:00")
    assert e.message == "not valid at this date, weekday or hour; next from 2026-01-20 02:00 UTC"


def test_the_ends_of_the_calendar_price_and_explain_without_error(pricer):
    # given a schedule anchored at starts_at 0001-01-01 UTC, still year 0 in New York
    data = rules_with({"recurrence": "FREQ=WEEKLY;INTERVAL=3", "starts_at": "0001-01-01T00:00:00Z"})
    data["timezone"] = "America/New_York"
    assert compile_rules(parse_rules(data)).arrays.offer[0, L.O_REC_ANCHOR] == -719_162
    # when baskets at both ends of the calendar are explained, then nothing overflows
    last = pricer(data, None, sold_at(datetime(9999, 12, 31, 12, tzinfo=UTC)), explain=True)
    assert last.explanations == (Explanation("special", WINDOW),)
    first = pricer(data, None, sold_at(datetime(1, 1, 2, 12, tzinfo=UTC)), explain=True)
    assert first.explanations[0].next_start == datetime(1, 1, 22, 4, 56, 2, tzinfo=UTC)  # LMT


def test_next_start_is_the_time_itself_when_the_conditions_hold():
    cond = parse_rules(rules_with({"recurrence": BIWEEKLY})).offers[0].conditions
    at = int(utc("2026-01-06T04:00").timestamp())
    assert next_start(cond, "Asia/Shanghai", at) == utc("2026-01-06T04:00")
    assert next_start(parse_rules(rules_with({})).offers[0].conditions, "UTC", at) is None


def test_the_watsons_example_has_a_biweekly_vip_gold_special():
    # given the example programme and a VIP Gold member buying perfume
    rules = load_rules(ROOT / "examples" / "watsons.yaml")
    assert validate(rules) == []
    compiled = compile_rules(rules, Catalogue.empty())
    gold = Member("m1", tier="vip-gold")
    perfume = (Line("1", "EDT-50", 1, 5000, category="fragrance"),)

    def discount(at: str) -> int:
        return price(compiled, Basket(perfume, utc(at)), gold).discount_minor

    # then it gives 15% on Tuesday 20 January 2026 at noon in Shanghai, not a week earlier
    assert discount("2026-01-20T04:00") == 750
    assert discount("2026-01-13T04:00") == 0


# ---- end to end: gRPC on the embedded store, on a clock the test sets ----------------------


SERVER_RULES = {
    "timezone": "Asia/Shanghai",
    "tiers": [{"id": "vip", "earn_multiplier_bps": 10000}],
    "offers": [
        {
            "id": "vip-fortnight",
            "name": "VIP fortnight",
            "scope": {"all": True},
            "conditions": {
                "tiers": ["vip"],
                "recurrence": BIWEEKLY,
                "from_hour": 10,
                "to_hour": 22,
            },
            "percent_off": {"percent_bps": 1000},
        }
    ],
}


@pytest.fixture
def server(tmp_path):
    clock = Clock(utc("2026-01-20T04:00"))
    settings = Settings(port=0, data_dir=tmp_path / "data", store="embedded")
    srv, port, app = create_server(settings, clock=clock)
    srv.start()
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    campaigns = campaigns_pb2_grpc.CampaignServiceStub(channel)
    campaigns.PublishRuleSet(campaigns_pb2.PublishRuleSetRequest(rules=parse_rules(SERVER_RULES)))
    members = members_pb2_grpc.MemberServiceStub(channel)
    members.UpsertMember(members_pb2.UpsertMemberRequest(member_id="v1", tier="vip"))
    yield clock, campaigns, checkout_pb2_grpc.CheckoutServiceStub(channel), members
    channel.close()
    srv.stop(None).wait()
    app.close()


def test_evaluate_over_grpc_at_two_times_and_the_shopping_list(server):
    clock, campaigns, checkout, members = server
    req = checkout_pb2.EvaluateRequest(member_id="v1", store_id="s1", channel="pos")
    req.lines.add(line_id="1", sku="A", quantity=1, unit_price_minor=1000)
    # on Tuesday 20 January at noon in Shanghai the special applies (the byte path)
    assert checkout.Evaluate(req).discount_minor == 100
    # a week later it does not, and the explanation says when it starts again
    clock.now = utc("2026-01-27T04:00")
    assert checkout.Evaluate(req).discount_minor == 0
    req.explain = True
    (e,) = checkout.Evaluate(req).explanations
    assert (e.offer_id, e.reason) == ("vip-fortnight", "NOT_IN_TIME_WINDOW")
    assert e.next_start.ToDatetime(tzinfo=UTC) == utc("2026-02-03T02:00")
    # the shopping list shows it from its next start, and without one while it is on
    listed = members.ListOffers(members_pb2.ListOffersRequest(member_id="v1")).offers
    assert [o.offer_id for o in listed] == ["vip-fortnight"]
    assert listed[0].valid_from.ToDatetime(tzinfo=UTC) == utc("2026-02-03T02:00")
    on = members_pb2.ListOffersRequest(member_id="v1")
    on.at.FromDatetime(utc("2026-02-04T04:00"))
    (now_on,) = members.ListOffers(on).offers
    assert not now_on.HasField("valid_from")


def test_publishing_an_unsupported_rule_is_invalid_argument_on_its_field(server):
    _, campaigns, _, _ = server
    bad = parse_rules(SERVER_RULES)
    bad.offers[0].conditions.recurrence = "FREQ=YEARLY;DTSTART=20260101"
    with pytest.raises(grpc.RpcError) as exc:
        campaigns.PublishRuleSet(campaigns_pb2.PublishRuleSetRequest(rules=bad))
    assert exc.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "offers[0].conditions.recurrence" in exc.value.details()
