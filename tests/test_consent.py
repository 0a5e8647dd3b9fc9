"""Consent withdrawal revokes personalised coupons (issue 11, item 8), over gRPC on both stores.

A personalised coupon (``IssueCouponsRequest.personalised``, set by targeting runs) needs
marketing and automated-decisions consent. ``UpsertMember`` without either revokes the
member's personalised coupons with uses left: status REVOKED with reason and time in
``GetMember``, off ``ListOffers``, never applied at Evaluate/Commit, not restored when consent
comes back. Coupons issued by hand (not personalised) are untouched.
"""

from __future__ import annotations

import copy
from datetime import UTC, timedelta
from pathlib import Path
from typing import Any

import grpc
import pytest

from loyalty.v1 import checkout_pb2, members_pb2
from server.store import CouponStatus, EmbeddedStore, MemberProfile, Store
from server.store.base import Consent
from server.store.redis.store import RedisStore
from tests.test_server_checkout import RULES, T0, basket, commit, published

W = members_pb2.WalletCoupon

_RULES: dict[str, Any] = copy.deepcopy(RULES)
_RULES["offers"].append(
    {
        "id": "tea-coupon",
        "activation": "COUPON",
        "scope": {"skus": ["TEA"]},
        "stacking": {"priority": 40},
        "amount_off": {"amount_minor": 100},
    }
)
LINES = [("L1", "RICE", 1, 4500), ("L2", "TEA", 1, 500)]
BOTH = members_pb2.Consent(marketing=True, automated_decisions=True)


@pytest.fixture(params=["embedded", "redis"])
def shop(tmp_path: Path, request: pytest.FixtureRequest) -> Any:
    with published(tmp_path, request, _RULES) as stubs:
        yield stubs


def upsert(shop: Any, member_id: str, consent: members_pb2.Consent) -> members_pb2.Member:
    return shop.members.UpsertMember(
        members_pb2.UpsertMemberRequest(member_id=member_id, tier="member", consent=consent)
    )


def issue(
    shop: Any, issue_id: str, offer_id: str, member_ids: list[str], *, personalised: bool
) -> members_pb2.IssueCouponsResponse:
    req = members_pb2.IssueCouponsRequest(
        issue_id=issue_id,
        offer_id=offer_id,
        member_ids=member_ids,
        uses=2,
        personalised=personalised,
    )
    req.valid_from.FromDatetime(T0 - timedelta(days=1))
    req.valid_until.FromDatetime(T0 + timedelta(days=30))
    return shop.members.IssueCoupons(req)


def wallet(shop: Any, member_id: str) -> dict[str, members_pb2.WalletCoupon]:
    return {c.offer_id: c for c in shop.member(member_id).wallet}


def applied(reply: Any) -> set[str]:
    """The coupon offers that applied (automatic offers left out)."""
    return {o.offer_id for o in reply.offers if o.offer_id.endswith("-coupon")}


def listed(shop: Any, member_id: str) -> list[str]:
    offers = shop.members.ListOffers(members_pb2.ListOffersRequest(member_id=member_id)).offers
    return [o.offer_id for o in offers if o.source == "wallet"]


def test_withdrawing_automated_decisions_revokes_only_personalised_coupons(shop: Any) -> None:
    upsert(shop, "m1", BOTH)
    assert issue(shop, "p1", "rice-coupon", ["m1"], personalised=True).issued == 1
    assert issue(shop, "h1", "tea-coupon", ["m1"], personalised=False).issued == 1
    req = basket("m1", LINES)
    assert applied(shop.checkout.Evaluate(req)) == {"rice-coupon", "tea-coupon"}
    commit(shop, "t1", req)  # one use of each: one left on each
    before = wallet(shop, "m1")
    assert before["rice-coupon"].personalised and not before["tea-coupon"].personalised
    assert before["rice-coupon"].status == W.STATUS_ACTIVE

    # when the member withdraws automated-decisions consent (marketing kept)
    shop.clock.now = withdrawn_at = T0 + timedelta(hours=1)
    member = upsert(shop, "m1", members_pb2.Consent(marketing=True))
    rice = {c.offer_id: c for c in member.wallet}["rice-coupon"]
    assert rice.status == W.STATUS_REVOKED
    assert rice.revoked_reason == "consent withdrawn: automated_decisions"
    assert rice.revoked_at.ToDatetime(tzinfo=UTC) == withdrawn_at
    assert rice.uses_left == 1  # what was left when revoked
    tea = wallet(shop, "m1")["tea-coupon"]
    assert tea.status == W.STATUS_ACTIVE and tea.revoked_reason == ""
    assert not tea.HasField("revoked_at")

    # then the revoked coupon is off the shopping list and never applies; the other one does
    assert listed(shop, "m1") == ["tea-coupon"]
    req = basket("m1", LINES, at=withdrawn_at)
    assert applied(shop.checkout.Evaluate(req)) == {"tea-coupon"}
    assert applied(commit(shop, "t2", req).result) == {"tea-coupon"}
    assert wallet(shop, "m1")["rice-coupon"].uses_left == 1

    # an idempotent repeat changes nothing; re-granting consent restores nothing
    shop.clock.now = T0 + timedelta(hours=2)
    upsert(shop, "m1", members_pb2.Consent(marketing=True))
    upsert(shop, "m1", BOTH)
    upsert(shop, "m1", BOTH)
    again = wallet(shop, "m1")["rice-coupon"]
    assert again == rice
    assert listed(shop, "m1") == []  # the tea coupon is used up now
    assert applied(shop.checkout.Evaluate(basket("m1", LINES, at=shop.clock.now))) == set()
    # nor does retrying the issue that created it
    assert issue(shop, "p1", "rice-coupon", ["m1"], personalised=True).issued == 1
    assert wallet(shop, "m1")["rice-coupon"] == rice


def test_withdrawing_marketing_revokes_every_personalised_coupon(shop: Any) -> None:
    upsert(shop, "m2", BOTH)
    issue(shop, "p-rice", "rice-coupon", ["m2"], personalised=True)
    issue(shop, "p-tea", "tea-coupon", ["m2"], personalised=True)
    issue(shop, "h-rice", "rice-coupon", ["m2"], personalised=False)
    shop.clock.now = T0 + timedelta(minutes=5)
    member = upsert(shop, "m2", members_pb2.Consent(automated_decisions=True))
    by_id = {c.coupon_id: c for c in member.wallet}
    for coupon in ("p-rice:m2", "p-tea:m2"):
        assert by_id[coupon].status == W.STATUS_REVOKED
        assert by_id[coupon].revoked_reason == "consent withdrawn: marketing"
    assert by_id["h-rice:m2"].status == W.STATUS_ACTIVE
    assert listed(shop, "m2") == ["rice-coupon"]
    req = basket("m2", LINES, at=shop.clock.now)
    assert applied(commit(shop, "t-m2", req).result) == {"rice-coupon"}
    assert {c.coupon_id: c.uses_left for c in shop.member("m2").wallet} == {
        "p-rice:m2": 2,
        "p-tea:m2": 2,
        "h-rice:m2": 1,  # the hand-issued one was used
    }


def test_cancelling_a_sale_gives_a_use_back_to_a_revoked_coupon_but_it_stays_revoked(
    shop: Any,
) -> None:
    upsert(shop, "m3", BOTH)
    issue(shop, "p1", "rice-coupon", ["m3"], personalised=True)
    assert applied(commit(shop, "t1", basket("m3", LINES)).result) == {"rice-coupon"}
    upsert(shop, "m3", members_pb2.Consent())
    shop.checkout.Cancel(checkout_pb2.CancelRequest(transaction_id="t1"))
    rice = wallet(shop, "m3")["rice-coupon"]
    assert (rice.status, rice.uses_left) == (W.STATUS_REVOKED, 2)
    assert rice.revoked_reason == "consent withdrawn: marketing, automated_decisions"
    assert applied(shop.checkout.Evaluate(basket("m3", LINES))) == set()
    assert listed(shop, "m3") == []


def test_personalised_coupons_skip_members_without_consent(shop: Any) -> None:
    upsert(shop, "yes", BOTH)
    upsert(shop, "no-auto", members_pb2.Consent(marketing=True))
    upsert(shop, "no-mkt", members_pb2.Consent(automated_decisions=True))
    members = ["yes", "no-auto", "no-mkt"]
    reply = issue(shop, "p1", "rice-coupon", members, personalised=True)
    assert reply.issued == 1 and list(reply.skipped_member_ids) == ["no-auto", "no-mkt"]
    assert issue(shop, "p1", "rice-coupon", members, personalised=True) == reply  # a retry
    assert wallet(shop, "no-auto") == {}
    # a coupon not personalised needs no automated-decisions consent
    assert issue(shop, "h1", "rice-coupon", ["no-auto"], personalised=False).issued == 1
    # the same issue and member with the other flag is another coupon
    with pytest.raises(grpc.RpcError) as exc:
        issue(shop, "h1", "rice-coupon", ["no-auto"], personalised=True)
    assert exc.value.code() == grpc.StatusCode.ALREADY_EXISTS


# ---------------------------------------------------------------------------------------------
# The store contract: both stores give the same records


@pytest.fixture
def store(each_store: Store) -> Store:
    return each_store


def _records(s: Store) -> tuple[object, ...]:
    t = T0 - timedelta(days=1)
    until = T0 + timedelta(days=30)
    s.upsert_member(MemberProfile("a", consent=Consent(True, True)), T0)
    s.upsert_member(MemberProfile("b", consent=Consent(True, False)), T0)
    out = s.issue_coupons("p", "rice-coupon", ["a", "b"], 3, t, until, T0, personalised=True)
    s.issue_coupons("h", "rice-coupon", ["a"], 1, t, until, T0)
    later = T0 + timedelta(seconds=1)
    s.upsert_member(MemberProfile("a", consent=Consent(False, True, True)), later)
    s.upsert_member(MemberProfile("a", consent=Consent(True, True)), later + timedelta(1))
    return out, s.get_member("a", later), s.get_member("b", later)


def test_the_stores_agree(store: Store) -> None:
    out, a, b = _records(store)
    assert (out.coupon_ids, out.skipped) == (("p:a",), ("b",))
    assert b.wallet == ()
    by_id = {c.coupon_id: c for c in a.wallet}
    assert by_id["p:a"].status == CouponStatus.REVOKED and by_id["p:a"].personalised
    assert by_id["p:a"].revoked_reason == "consent withdrawn: marketing"
    assert by_id["p:a"].revoked_at == T0 + timedelta(seconds=1)
    assert by_id["h:a"].status == CouponStatus.ACTIVE and not by_id["h:a"].personalised
    assert a.engine_member(T0 + timedelta(seconds=2)).wallet == {"rice-coupon": 1}


def test_a_targeting_run_issues_personalised_coupons_that_withdrawal_revokes(
    tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    from server.analytics.targeting import run_targeting
    from tests.test_targeting_run import CONSENTS, HISTORY, NOW, PLAYBOOK

    for kind in ("embedded", "redis"):
        s: Store = (
            EmbeddedStore(tmp_path / kind)
            if kind == "embedded"
            else RedisStore(request.getfixturevalue("redis_url"))
        )
        try:
            for member_id, consent in CONSENTS.items():
                s.upsert_member(MemberProfile(member_id, consent=consent), NOW)
            run_targeting(s, HISTORY, PLAYBOOK, "run-1", NOW, as_of=NOW)
            flags = {c.coupon_id: c.personalised for c in s.get_member("all-yes", NOW).wallet}
            # care-trial is a personalised campaign, the newsletter is not
            assert flags == {"run-1:care-trial:all-yes": True, "run-1:newsletter:all-yes": False}
            later = NOW + timedelta(hours=1)
            s.upsert_member(MemberProfile("all-yes", consent=Consent(True, False, True)), later)
            status = {c.coupon_id: c.status for c in s.get_member("all-yes", later).wallet}
            assert status == {
                "run-1:care-trial:all-yes": CouponStatus.REVOKED,
                "run-1:newsletter:all-yes": CouponStatus.ACTIVE,
            }
            # a re-run under the same id restores nothing
            run_targeting(s, HISTORY, PLAYBOOK, "run-1", later, as_of=NOW)
            assert {c.coupon_id: c.status for c in s.get_member("all-yes", later).wallet} == (
                status
            )
        finally:
            s.close()
