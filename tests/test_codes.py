"""Coupon code batches through gRPC on port 0, on each store, a Redis Cluster included
(issue 11 item 1): CampaignService.CreateCouponCodes, ListCouponCodes, GetCouponCode, and the
CLI's ``loyalty codes``. The cluster's claim protocol itself: tests/test_redis_cluster_codes.py.
"""

from __future__ import annotations

import re
from datetime import timedelta

import grpc
import pytest

from loyalty.v1 import campaigns_pb2, checkout_pb2, members_pb2
from server.store.codes import DEFAULT_ALPHABET
from server.store.redis import code_claims
from tests.test_server_checkout import RULES, T0, basket, commit, published, violations

S = checkout_pb2.CouponResult
CS = campaigns_pb2.CouponCodeStatus


@pytest.fixture(params=["embedded", "redis", "cluster"])
def shop(tmp_path, request):
    """A published server on each store (the cluster's under a key prefix of its own): its
    stubs and its clock."""
    with published(tmp_path, request, RULES, members=[("vip1", "vip")]) as stubs:
        yield stubs


def request(batch_id: str = "b1", count: int = 2_000, **kw: object):
    req = campaigns_pb2.CreateCouponCodesRequest(
        batch_id=batch_id, offer_id=kw.pop("offer_id", "rice-coupon"), count=count, **kw
    )
    if "valid_from" not in kw:
        req.valid_from.FromDatetime(T0 - timedelta(days=1))
    if "valid_until" not in kw:
        req.valid_until.FromDatetime(T0 + timedelta(days=30))
    return req


def all_codes(shop, **kw: object) -> list[campaigns_pb2.CouponCode]:
    out, token = [], ""
    while True:
        page = shop.campaigns.ListCouponCodes(
            campaigns_pb2.ListCouponCodesRequest(page_token=token, **kw)
        )
        out.extend(page.codes)
        token = page.next_page_token
        if not token:
            return out


def test_a_batch_is_generated_idempotently_and_unique_across_batches(shop):
    first = shop.campaigns.CreateCouponCodes(request(prefix="RICE-"))
    assert (first.count, first.length, first.alphabet) == (2_000, 8, DEFAULT_ALPHABET)
    assert first.uses_per_code == 1 and first.created_at.ToDatetime().year == T0.year
    # the same request again: the same answer, no new codes
    assert shop.campaigns.CreateCouponCodes(request(prefix="RICE-")) == first
    # another request under the same id
    with pytest.raises(grpc.RpcError) as exc:
        shop.campaigns.CreateCouponCodes(request(prefix="RICE-", count=10))
    assert exc.value.code() == grpc.StatusCode.ALREADY_EXISTS
    codes = all_codes(shop, batch_id="b1", page_size=300)
    assert len(codes) == 2_000 == len({c.code for c in codes})
    shape = re.compile(f"RICE-[{DEFAULT_ALPHABET}]{{8}}")
    assert all(shape.fullmatch(c.code) for c in codes)
    assert not set("".join(c.code[5:] for c in codes)) & set("0O1IL")
    assert {(c.status, c.uses_left, c.batch_id) for c in codes} == {
        (CS.COUPON_CODE_STATUS_UNUSED, 1, "b1")
    }
    # a second batch with a pattern: unique across both
    shop.campaigns.CreateCouponCodes(request("b2", pattern="####-####-##", alphabet="ABCDEFGHJK"))
    second = all_codes(shop, batch_id="b2")
    assert all(re.fullmatch("[A-HJK]{4}-[A-HJK]{4}-[A-HJK]{2}", c.code) for c in second)
    everything = all_codes(shop, page_size=1_000)
    assert len(everything) == 4_000 == len({c.code for c in everything})
    assert [c.batch_id for c in everything[:1]] == ["b1"]


def test_a_generated_code_redeems_and_shows_its_use(shop):
    shop.campaigns.CreateCouponCodes(request(count=50, uses_per_code=2))
    code = all_codes(shop, batch_id="b1")[0].code
    done = commit(shop, "t-code", basket(codes=[code]))
    assert [(c.code, c.status) for c in done.result.coupons] == [(code, S.APPLIED)]
    got = shop.campaigns.GetCouponCode(campaigns_pb2.GetCouponCodeRequest(code=code))
    assert (got.uses_left, got.status, got.last_transaction_id) == (
        1,
        CS.COUPON_CODE_STATUS_USED,
        "t-code",
    )
    assert got.last_redeemed_at.ToDatetime().replace(tzinfo=T0.tzinfo) == T0
    used = all_codes(shop, batch_id="b1", status=CS.COUPON_CODE_STATUS_USED)
    assert [c.code for c in used] == [code]
    assert len(all_codes(shop, batch_id="b1", status=CS.COUPON_CODE_STATUS_UNUSED)) == 49
    commit(shop, "t-code-2", basket(codes=[code]))
    up = all_codes(shop, status=CS.COUPON_CODE_STATUS_USED_UP)
    assert [(c.code, c.last_transaction_id) for c in up] == [(code, "t-code-2")]
    # after the window: the unused ones are expired
    shop.clock.now = T0 + timedelta(days=31)
    assert len(all_codes(shop, status=CS.COUPON_CODE_STATUS_EXPIRED)) == 49


def test_per_member_codes_need_a_member_and_serve_each_member_once(shop):
    shop.campaigns.CreateCouponCodes(request(count=5, uses_per_code=10, per_member=True))
    code = all_codes(shop)[0].code
    assert all_codes(shop)[0].per_member
    guest = shop.checkout.Evaluate(basket(member_id="", codes=[code]))
    assert [c.status for c in guest.coupons] == [S.MEMBER_REQUIRED]
    assert [c.status for c in commit(shop, "t1", basket(codes=[code])).result.coupons] == [
        S.APPLIED
    ]
    again = shop.checkout.Evaluate(basket(codes=[code]))
    assert [c.status for c in again.coupons] == [S.USED_UP]
    shop.members.UpsertMember(members_pb2.UpsertMemberRequest(member_id="m2"))
    other = shop.checkout.Evaluate(basket(member_id="m2", codes=[code]))
    assert [c.status for c in other.coupons] == [S.APPLIED]


def test_codes_bound_to_members_serve_only_their_member(shop):
    for m in ("m2", "m3"):
        shop.members.UpsertMember(members_pb2.UpsertMemberRequest(member_id=m))
    members = ["vip1", "m2", "m3"]
    batch = shop.campaigns.CreateCouponCodes(request(count=0, member_ids=members, uses_per_code=2))
    assert (batch.count, batch.bound_codes) == (3, 3)
    # a retry answers the same batch; another member list under the same id is refused
    assert shop.campaigns.CreateCouponCodes(request(count=3, member_ids=members, uses_per_code=2))
    with pytest.raises(grpc.RpcError) as exc:
        shop.campaigns.CreateCouponCodes(request(member_ids=["m3", "m2", "vip1"], count=0))
    assert exc.value.code() == grpc.StatusCode.ALREADY_EXISTS
    codes = all_codes(shop, batch_id="b1")
    assert [c.member_id for c in codes] == members  # code i for member i, in order
    mine = {c.member_id: c.code for c in codes}
    got = shop.campaigns.GetCouponCode(campaigns_pb2.GetCouponCodeRequest(code=mine["m2"]))
    assert got.member_id == "m2"
    code = mine["vip1"]
    assert [c.status for c in shop.checkout.Evaluate(basket(codes=[code])).coupons] == [S.APPLIED]
    other = shop.checkout.Evaluate(basket(member_id="m2", codes=[code]))
    assert [c.status for c in other.coupons] == [S.WRONG_MEMBER]
    assert other.coupons[0].reason == "this code belongs to another member"
    assert "rice-coupon" not in {a.offer_id for a in other.offers}
    guest = shop.checkout.Evaluate(basket(member_id="", codes=[code]))
    assert [c.status for c in guest.coupons] == [S.MEMBER_REQUIRED]
    # a commit by another member does not use it; the owner's commit does (twice: 2 uses)
    done = commit(shop, "t-wrong", basket(member_id="m2", codes=[code]))
    assert [c.status for c in done.result.coupons] == [S.WRONG_MEMBER]
    for txn in ("t-own-1", "t-own-2"):
        own = commit(shop, txn, basket(codes=[code]))
        assert [c.status for c in own.result.coupons] == [S.APPLIED]
    left = shop.campaigns.GetCouponCode(campaigns_pb2.GetCouponCodeRequest(code=code))
    assert (left.uses_left, left.last_transaction_id) == (0, "t-own-2")


def test_a_bound_batch_keeps_member_order_through_collisions_and_chunks(shop, monkeypatch):
    from server.store import codes as shared
    from server.store.embedded import codes as embedded_codes
    from server.store.redis import codes as redis_codes

    shop.campaigns.CreateCouponCodes(request("b0", count=50))
    taken = [c.code for c in all_codes(shop, batch_id="b0")]
    monkeypatch.setattr(embedded_codes, "WRITE_CODES", 70)
    monkeypatch.setattr(redis_codes, "SCRIPT_CODES", 70)
    monkeypatch.setattr(code_claims, "ROUND", 70)  # a cluster's rounds, records and blocks
    monkeypatch.setattr(code_claims, "RECORD_CODES", 30)
    monkeypatch.setattr(code_claims, "BLOCK", 50)
    real = shared.draw

    def colliding(batch, n, *args, **kw):  # a draw of 3+ repeats codes and brings a taken one
        codes = real(batch, n, *args, **kw)
        if n < 3:
            return codes
        return [taken[n % len(taken)], *codes[: n // 2], *codes[: n - 1 - n // 2]]

    monkeypatch.setattr(embedded_codes, "draw", colliding)
    monkeypatch.setattr(redis_codes, "draw", colliding)
    monkeypatch.setattr(code_claims, "draw", colliding)
    members = [f"p{i:04d}" for i in range(300)]
    done = shop.campaigns.CreateCouponCodes(request("b1", count=0, member_ids=members))
    codes = all_codes(shop, batch_id="b1")
    assert [c.member_id for c in codes] == members
    assert len({c.code for c in codes}) == 300 == done.count
    assert not {c.code for c in codes} & set(taken)
    assert done.collisions > 0


@pytest.mark.parametrize(
    ("kw", "fields"),
    [
        ({"count": 2, "member_ids": ["a", "b", "c"]}, ["count"]),
        ({"count": 0, "member_ids": ["a", "a"]}, ["member_ids"]),
        ({"count": 0, "member_ids": ["a", ""]}, ["member_ids[1]"]),
        ({"count": 0, "member_ids": ["x" * 129]}, ["member_ids[0]"]),
        ({"offer_id": "ghost"}, ["offer_id"]),
        ({"offer_id": "vip-skincare"}, ["offer_id"]),  # automatic, not a coupon offer
        ({"count": 0}, ["count"]),
        ({"count": 1_000_001}, ["count"]),
        ({"pattern": "##-##"}, ["pattern"]),  # too little entropy
        ({"pattern": "####-####-#x"}, ["pattern"]),
        ({"alphabet": "ABCDEFGHIJ"}, ["alphabet"]),  # I is a look-alike
        ({"length": 5}, ["length"]),
        ({"prefix": "rice"}, ["prefix"]),
        ({"batch_id": ""}, ["batch_id"]),
        ({"uses_per_code": -1}, ["uses_per_code"]),
    ],
)
def test_bad_requests_name_their_fields(shop, kw, fields):
    kw = dict(kw)
    batch_id = str(kw.pop("batch_id", "bad"))
    with pytest.raises(grpc.RpcError) as exc:
        shop.campaigns.CreateCouponCodes(request(batch_id, **kw))
    assert exc.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert violations(exc.value) == fields


def test_the_window_is_required_and_ordered(shop):
    req = request()
    req.ClearField("valid_from")
    with pytest.raises(grpc.RpcError) as exc:
        shop.campaigns.CreateCouponCodes(req)
    assert violations(exc.value) == ["valid_from"]
    req = request()
    req.valid_until.FromDatetime(T0 - timedelta(days=2))
    with pytest.raises(grpc.RpcError) as exc:
        shop.campaigns.CreateCouponCodes(req)
    assert violations(exc.value) == ["valid_until"]


def test_listing_pages_and_refuses_foreign_tokens(shop):
    shop.campaigns.CreateCouponCodes(request(count=25))
    page = shop.campaigns.ListCouponCodes(
        campaigns_pb2.ListCouponCodesRequest(batch_id="b1", page_size=10)
    )
    assert len(page.codes) == 10 and page.next_page_token
    with pytest.raises(grpc.RpcError) as exc:  # the token of another listing
        shop.campaigns.ListCouponCodes(
            campaigns_pb2.ListCouponCodesRequest(page_token=page.next_page_token)
        )
    assert violations(exc.value) == ["page_token"]
    with pytest.raises(grpc.RpcError) as exc:
        shop.campaigns.ListCouponCodes(campaigns_pb2.ListCouponCodesRequest(batch_id="nope"))
    assert exc.value.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.RpcError) as exc:
        shop.campaigns.GetCouponCode(campaigns_pb2.GetCouponCodeRequest(code="NOPE"))
    assert exc.value.code() == grpc.StatusCode.NOT_FOUND
    assert len(all_codes(shop, batch_id="b1", page_size=7)) == 25
    with pytest.raises(grpc.RpcError) as exc:
        shop.campaigns.ListCouponCodes(campaigns_pb2.ListCouponCodesRequest(status=99))
    assert violations(exc.value) == ["status"]


def test_the_cli_generates_lists_shows_and_exports(shop, capsys, tmp_path, monkeypatch):
    import polars as pl

    from server.cli import connect
    from server.cli.main import main

    for name in (connect.TARGET_ENV, connect.API_KEY_ENV, connect.TLS_CA_ENV):
        monkeypatch.delenv(name, raising=False)
    target = ["--target", shop.target]
    window = ["--valid-from", (T0 - timedelta(days=1)).isoformat(), "--days", "30"]
    argv = ["codes", "generate", "rice-coupon", "--batch-id", "cli-1", "--count", "300"]
    assert main([*argv, "--pattern", "RC-######", *window, *target]) == 0
    assert "batch cli-1: 300 codes of rice-coupon" in capsys.readouterr().out
    assert main([*argv, "--pattern", "RC-######", *window, *target]) == 0  # idempotent
    capsys.readouterr()
    assert main(["codes", "list", "--batch", "cli-1", "--limit", "5", *target]) == 0
    shown = capsys.readouterr().out.splitlines()
    assert len(shown) == 5 and all(line.startswith("RC-") for line in shown)
    code = shown[0].split()[0]
    commit(shop, "t-cli", basket(codes=[code]))
    assert main(["codes", "show", code, *target]) == 0
    assert "used-up" in capsys.readouterr().out
    out_csv, out_pq = tmp_path / "b.csv", tmp_path / "b.parquet"
    assert main(["codes", "export", "cli-1", "--out", str(out_csv), *target]) == 0
    assert main(["codes", "export", "cli-1", "--out", str(out_pq), *target]) == 0
    frame = pl.read_parquet(out_pq)
    assert frame.height == 300 == pl.read_csv(out_csv).height
    assert frame["code"].n_unique() == 300
    used = frame.filter(pl.col("code") == code).row(0, named=True)
    assert (used["status"], used["last_transaction_id"]) == ("used-up", "t-cli")


def test_batches_are_listed(shop):
    shop.campaigns.CreateCouponCodes(request("b1", count=10))
    shop.campaigns.CreateCouponCodes(request("b2", count=20, per_member=True))
    reply = shop.campaigns.ListCouponCodeBatches(campaigns_pb2.ListCouponCodeBatchesRequest())
    assert [(b.batch_id, b.count, b.per_member) for b in reply.batches] == [
        ("b1", 10, False),
        ("b2", 20, True),
    ]


def test_a_batch_cut_short_is_completed_by_the_same_request(shop, monkeypatch):
    from server.store import codes as shared
    from server.store.embedded import codes as embedded_codes
    from server.store.redis import codes as redis_codes

    monkeypatch.setattr(embedded_codes, "WRITE_CODES", 100)
    monkeypatch.setattr(redis_codes, "CHUNK", 100)
    monkeypatch.setattr(code_claims, "ROUND", 100)  # a cluster draws a block a round
    monkeypatch.setattr(code_claims, "BLOCK", 100)
    real, calls = shared.draw, []

    def failing(*args, **kw):
        calls.append(1)
        if len(calls) == 3:
            raise RuntimeError("crash")
        return real(*args, **kw)

    monkeypatch.setattr(embedded_codes, "draw", failing)
    monkeypatch.setattr(redis_codes, "draw", failing)
    monkeypatch.setattr(code_claims, "draw", failing)
    with pytest.raises(grpc.RpcError):
        shop.campaigns.CreateCouponCodes(request(count=500))
    assert len(all_codes(shop, batch_id="b1")) == 200
    done = shop.campaigns.CreateCouponCodes(request(count=500))
    codes = all_codes(shop, batch_id="b1")
    assert done.count == 500 == len(codes) == len({c.code for c in codes})


def test_a_schema_4_file_is_migrated_to_code_batches(tmp_path):
    import sqlite3

    from server.store.codes import CodeBatch
    from server.store.embedded.schema import SCHEMA_VERSION
    from server.store.embedded.store import DB_FILE, EmbeddedStore

    store = EmbeddedStore(tmp_path)
    store.create_codes("o1", ["OLD-1"], 2, False, T0, T0 + timedelta(days=1))
    store.close()
    with sqlite3.connect(tmp_path / DB_FILE) as db:  # back to what schema 4 wrote
        for stmt in (
            "DROP INDEX codes_batch",
            "DROP TABLE code_batches",
            "ALTER TABLE codes DROP COLUMN batch_id",
            "ALTER TABLE codes DROP COLUMN last_tx",
            "ALTER TABLE codes DROP COLUMN last_us",
            "ALTER TABLE codes DROP COLUMN member_id",
            "DELETE FROM schema_version",
            "INSERT INTO schema_version VALUES (4, 0)",
        ):
            db.execute(stmt)
    store = EmbeddedStore(tmp_path)
    try:
        old = store.coupon_code("OLD-1")
        assert (old.batch_id, old.uses_left, old.last_tx) == ("", 2, "")
        us = int(T0.timestamp() * 1_000_000)
        batch = CodeBatch("b", "o1", 10, "", "", 8, "ABCDEFGHJK", 1, False, us, us + 10**9)
        assert store.create_code_batch(batch, T0).generated == 10
        with sqlite3.connect(tmp_path / DB_FILE) as db:
            assert db.execute("SELECT MAX(version) FROM schema_version").fetchone() == (
                SCHEMA_VERSION,
            )
    finally:
        store.close()
