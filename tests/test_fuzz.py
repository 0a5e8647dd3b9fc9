"""Fuzzing every RPC of the three services over real gRPC, on both stores.

Messages are drawn from each method's request descriptor: every field of every nested message,
with edge values (empty and over-long strings, non-ASCII text, 0, -1, the int64 and int32
limits, unknown enum numbers, timestamps at and past the ends of time, empty and repeated
lists). Raw random bytes and wrong wire types are sent as well, and to a server that asks for
API keys, with no key, an unknown one, a role that may not and one that may. Whatever arrives,
the answer is a status from the documented set — never INTERNAL or UNKNOWN — and afterwards the
server still serves (health, a valid Evaluate and Commit), every member it knows still reads,
and the members' balances agree with their lots and with the ledger (:func:`_invariants`).

Every call is counted per RPC and status; the table is printed at the end of the module and
written to ``fuzz_counts.txt`` in pytest's base temporary directory.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import grpc
import pytest
from google.protobuf.descriptor import Descriptor, FieldDescriptor, MethodDescriptor
from google.protobuf.message import Message
from google.protobuf.message_factory import GetMessageClass
from grpc_health.v1 import health_pb2, health_pb2_grpc
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from loyalty.v1 import checkout_pb2, checkout_pb2_grpc, members_pb2, members_pb2_grpc
from server.api.app import LOYALTY, create_server
from server.cli.demo import load_demo
from server.settings import Settings
from server.store.records import sign

# what a client may be answered; INTERNAL and UNKNOWN are bugs
EXPECTED = {
    grpc.StatusCode.OK,
    grpc.StatusCode.INVALID_ARGUMENT,
    grpc.StatusCode.NOT_FOUND,
    grpc.StatusCode.FAILED_PRECONDITION,
    grpc.StatusCode.ALREADY_EXISTS,
    grpc.StatusCode.ABORTED,
}
METHODS = [m for service in LOYALTY for m in service.methods]
INT64 = [0, 1, -1, 2**31 - 1, -(2**31), 2**63 - 1, -(2**63), 10**9, 100]
INT32 = [0, 1, -1, 2**31 - 1, -(2**31), 12, 31]
TEXT = st.one_of(
    st.sampled_from(["", "M10001", "M10002", "panadol-coupon", "SKU-0001", "x" * 129, "茶 ☕"]),
    st.text(max_size=12),
)
SECONDS = [0, 1_800_000_000, -62_135_596_800, 253_402_300_799, 2**63 - 1, -(2**63)]
NANOS = [0, 999_999_999, 1_000_000_000, -1]


def _scalar(field: FieldDescriptor) -> st.SearchStrategy[Any]:
    t = field.type
    if t in (FieldDescriptor.TYPE_STRING,):
        return TEXT
    if t == FieldDescriptor.TYPE_BYTES:
        return st.binary(max_size=64)
    if t == FieldDescriptor.TYPE_BOOL:
        return st.booleans()
    if t == FieldDescriptor.TYPE_ENUM:
        numbers = [v.number for v in field.enum_type.values]
        return st.sampled_from([*numbers, 99])
    if t in (
        FieldDescriptor.TYPE_INT32,
        FieldDescriptor.TYPE_SINT32,
        FieldDescriptor.TYPE_SFIXED32,
    ):
        return st.sampled_from(INT32)
    if t in (FieldDescriptor.TYPE_UINT32, FieldDescriptor.TYPE_FIXED32):
        return st.sampled_from([0, 1, 2**32 - 1])
    if t in (FieldDescriptor.TYPE_UINT64, FieldDescriptor.TYPE_FIXED64):
        return st.sampled_from([0, 1, 2**64 - 1])
    if t in (FieldDescriptor.TYPE_DOUBLE, FieldDescriptor.TYPE_FLOAT):
        return st.sampled_from([0.0, -1.0, 1e308, float("nan")])
    return st.sampled_from(INT64)


@st.composite
def messages(draw: st.DrawFn, descriptor: Descriptor, depth: int = 0) -> Message:
    """A message of ``descriptor`` with some fields set to edge values."""
    msg = GetMessageClass(descriptor)()
    if descriptor.full_name == "google.protobuf.Timestamp":
        msg.seconds, msg.nanos = draw(st.sampled_from(SECONDS)), draw(st.sampled_from(NANOS))
        return msg
    for field in descriptor.fields:
        if not draw(st.booleans()):
            continue
        if field.message_type is not None:
            if depth >= 3 or field.message_type.GetOptions().map_entry:
                continue
            items = draw(st.integers(1, 3)) if _repeated(field) else 1
            for _ in range(items):
                value = draw(messages(field.message_type, depth + 1))
                target = getattr(msg, field.name)
                (target.add() if _repeated(field) else target).CopyFrom(value)
        elif _repeated(field):
            getattr(msg, field.name).extend(draw(st.lists(_scalar(field), max_size=3)))
        else:
            setattr(msg, field.name, draw(_scalar(field)))
    return msg


def _repeated(field: FieldDescriptor) -> bool:
    return bool(field.is_repeated)


KEYS = {"fz-checkout": "checkout", "fz-admin": "admin"}
# with keys: no key, an unknown one, a role that may not call everything, one that may
METADATA = [
    (),
    (("x-api-key", "nope"),),
    (("x-api-key", "fz-checkout"),),
    (("x-api-key", "fz-admin"),),
]
KEYED = {grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED}


class Target:
    """A server to fuzz: its channel, its app, and whether it asks for API keys; ``members``
    = the member ids it knows (the demo's and those fuzzed calls created)."""

    def __init__(self, name: str, channel: grpc.Channel, app: Any, keyed: bool):
        self.name, self.channel, self.app, self.keyed = name, channel, app, keyed
        self.members = {f"M{10000 + k}" for k in range(1, 21)}
        # demo skus, kept: fuzzing may replace the catalogue
        self.skus = app.registry.catalogue.sku[:5]
        self.sku = self.skus[0]


# (target, method) -> status -> calls, over the whole module
COUNTS: dict[tuple[str, str], Counter[str]] = {}


def count_table(counts: dict[tuple[str, str], Counter[str]]) -> list[str]:
    """One line per RPC: calls on each target, in all, and by status."""
    targets = sorted({t for t, _ in counts})
    methods = sorted({m for _, m in counts})
    width = max((len(m) for m in methods), default=6)
    lines = [
        f"{'RPC':<{width}} " + " ".join(f"{t:>18}" for t in targets) + f" {'all':>6}  statuses"
    ]
    for m in methods:
        per = [sum(counts.get((t, m), Counter()).values()) for t in targets]
        codes: Counter[str] = Counter()
        for t in targets:
            codes.update(counts.get((t, m), Counter()))
        statuses = " ".join(f"{c}={n}" for c, n in sorted(codes.items()))
        lines.append(
            f"{m:<{width}} " + " ".join(f"{n:>18}" for n in per) + f" {sum(per):>6}  {statuses}"
        )
    total = sum(sum(c.values()) for c in counts.values())
    lines.append(f"{'total':<{width}} " + " " * (19 * len(targets)) + f"{total:>6}")
    return lines


@pytest.fixture(scope="module", autouse=True)
def fuzz_counts(request, tmp_path_factory) -> Iterator[None]:
    """Print the per-RPC call counts when the module ends, and keep them in a file."""
    COUNTS.clear()
    yield
    lines = count_table(COUNTS)
    path = tmp_path_factory.getbasetemp() / "fuzz_counts.txt"
    path.write_text("\n".join(lines) + "\n")
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    if reporter is not None and capture is not None:
        with capture.global_and_fixture_disabled():  # past the output capture, as capsys.disabled
            reporter.write_line("")
            reporter.write_line(f"fuzz counts per RPC (also in {path}):")
            for line in lines:
                reporter.write_line(line)


@pytest.fixture(scope="module", params=["embedded", "redis", "embedded with keys"])
def target(request, tmp_path_factory) -> Iterator[Target]:
    keyed = request.param.endswith("keys")
    settings = Settings(
        port=0,
        data_dir=tmp_path_factory.mktemp("fuzz"),
        metrics_port=0,
        api_keys=KEYS if keyed else {},
    )
    if request.param == "redis":  # the shared test Redis, under a prefix of its own
        url = request.getfixturevalue("redis_server").url
        settings = settings.replace(store="redis", redis_url=url, redis_prefix="fuzz:")
    server, port, app = create_server(settings)
    server.start()
    load_demo(app.registry, app.store, members=20)
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        yield Target(request.param, channel, app, keyed)
    server.stop(None).wait()
    app.close()


def _call(target: Target, method: MethodDescriptor, data: bytes, key: int) -> bool:
    """Send ``data`` to ``method``; the status must be a documented one. True when OK."""
    path = f"/{method.containing_service.full_name}/{method.name}"
    metadata = METADATA[key] if target.keyed else ()
    expected = EXPECTED | KEYED if target.keyed else EXPECTED
    counts = COUNTS.setdefault((target.name, method.full_name), Counter())
    try:
        target.channel.unary_unary(path)(data, timeout=60, metadata=metadata)
    except grpc.RpcError as exc:
        counts[exc.code().name] += 1
        assert exc.code() in expected, (path, exc.code(), exc.details())
        return False
    counts["OK"] += 1
    if method.name == "UpsertMember":  # a member to check afterwards
        target.members.add(members_pb2.UpsertMemberRequest.FromString(data).member_id)
    return True


def _still_serving(target: Target) -> None:
    health = health_pb2_grpc.HealthStub(target.channel).Check(
        health_pb2.HealthCheckRequest(), timeout=30
    )
    assert health.status == health_pb2.HealthCheckResponse.SERVING
    admin = METADATA[-1] if target.keyed else ()
    members = members_pb2_grpc.MemberServiceStub(target.channel)
    known = target.members | {e.member_id for e in target.app.store.ledger() if e.member_id}
    for member_id in sorted(known):  # every member still reads
        members.GetMember(
            members_pb2.GetMemberRequest(member_id=member_id), timeout=30, metadata=admin
        )
    # a valid basket is still priced and committed
    checkout = checkout_pb2_grpc.CheckoutServiceStub(target.channel)
    basket = checkout_pb2.EvaluateRequest(member_id="M10001")
    basket.lines.add(line_id="1", sku=target.sku, quantity=2, unit_price_minor=1990)
    assert checkout.Evaluate(basket, timeout=30, metadata=admin).gross_minor == 3980
    tx = f"fz-check-{uuid.uuid4().hex[:12]}"
    done = checkout.Commit(
        checkout_pb2.CommitRequest(transaction_id=tx, basket=basket), timeout=30, metadata=admin
    )
    assert done.result.gross_minor == 3980
    _invariants(target, known)


def _invariants(target: Target, members: set[str]) -> None:
    """What the store keeps for each member agrees with itself and with the ledger.

    - balances: available (net of debt) = the points of the available lots - debt, pending =
      the points of the pending lots; every lot holds points; a debt is left only when no
      available lot could pay it; every figure inside int64; GetMember shows the same (the
      debt counted once);
    - spend: lifetime = the nets of the member's commits - those of their cancels and returns;
      0 <= rolling <= lifetime;
    - points: available + pending = earned - redeemed over commits + adjustments - clawed back
      + given back over reversals (nothing expires or is forfeited within a run: lots expire
      months after they are earned).
    """
    store = target.app.store
    admin = METADATA[-1] if target.keyed else ()
    stub = members_pb2_grpc.MemberServiceStub(target.channel)
    now = datetime.now(UTC)
    spend: Counter[str] = Counter()
    points: Counter[str] = Counter()
    for e in store.ledger():
        if not e.member_id:
            continue
        spend[e.member_id] += sign(e) * sum(line.net_minor for line in e.lines)
        if e.kind == "adjust":
            points[e.member_id] += e.points_earned
        else:
            points[e.member_id] += sign(e) * (e.points_earned - e.points_redeemed)
    for member_id in sorted(members):
        r = store.get_member(member_id, now)
        where = (target.name, member_id)
        assert all(lot.points > 0 for lot in r.lots), where
        available = sum(lot.points for lot in r.lots if lot.available_at <= now)
        pending = sum(lot.points for lot in r.lots if lot.available_at > now)
        assert r.points_debt >= 0, where
        assert r.points_available == available - r.points_debt, where
        assert r.points_pending == pending, where
        assert r.points_debt == 0 or available == 0, where
        for figure in (r.points_available, r.points_pending, r.lifetime_spend_minor):
            assert -(2**63) <= figure < 2**63, where
        assert r.lifetime_spend_minor == spend[member_id], where
        assert 0 <= r.rolling_spend_minor <= r.lifetime_spend_minor, where
        assert r.points_available + r.points_pending == points[member_id], where
        shown = stub.GetMember(
            members_pb2.GetMemberRequest(member_id=member_id), timeout=30, metadata=admin
        )
        assert (shown.available_points, shown.pending_points) == (
            r.points_available,
            r.points_pending,
        ), where
        assert shown.lifetime_spend_minor == r.lifetime_spend_minor, where


SETTINGS = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@pytest.mark.parametrize("method", METHODS, ids=[m.full_name for m in METHODS])
def test_structured_edge_messages_get_a_documented_status(target, method):
    @SETTINGS
    @given(messages(method.input_type), st.integers(0, len(METADATA) - 1))
    def check(message: Message, key: int) -> None:
        _call(target, method, message.SerializeToString(), key)

    check()
    _still_serving(target)


@pytest.mark.parametrize("method", METHODS, ids=[m.full_name for m in METHODS])
def test_random_bytes_and_wrong_wire_types_get_a_documented_status(target, method):
    @SETTINGS
    @given(
        st.one_of(
            st.binary(max_size=200),
            # field 1..8 with every wire type, then garbage
            st.builds(
                lambda f, w, rest: bytes([(f << 3) | w]) + rest,
                st.integers(1, 15),
                st.sampled_from([0, 1, 2, 3, 4, 5, 6, 7]),
                st.binary(max_size=20),
            ),
        ),
        st.integers(0, len(METADATA) - 1),
    )
    def check(data: bytes, key: int) -> None:
        _call(target, method, data, key)

    check()
    _still_serving(target)


# ---- valid sequences: what the ledger and the balances must agree on -----------------------------
BY_NAME = {m.name: m for m in METHODS}
SHOPPERS = ("M10001", "M10002", "M10003")


@st.composite
def operations(draw: st.DrawFn) -> list[tuple[Any, ...]]:
    """Commits (redeeming points or not), returns and cancels of earlier commits, and points
    adjustments, for a few demo members."""
    ops: list[tuple[Any, ...]] = []
    for _ in range(draw(st.integers(1, 12))):
        kind = draw(st.sampled_from(["commit", "commit", "commit", "return", "cancel", "adjust"]))
        member = draw(st.sampled_from(SHOPPERS))
        if kind == "commit":
            lines = draw(
                st.lists(
                    st.tuples(st.integers(0, 4), st.integers(1, 5), st.integers(0, 50_000)),
                    min_size=1,
                    max_size=3,
                )
            )
            ops.append((kind, member, lines, draw(st.sampled_from([0, -1, 100]))))
        elif kind in ("return", "cancel"):
            ops.append(
                (kind, draw(st.integers(0, 20)), draw(st.integers(0, 2)), draw(st.integers(1, 3)))
            )
        else:
            ops.append((kind, member, draw(st.sampled_from([-5_000, -50, 5, 50, 5_000]))))
    return ops


def _run(target: Target, ops: list[tuple[Any, ...]]) -> None:
    run = uuid.uuid4().hex[:10]
    committed: list[tuple[str, int]] = []  # (transaction id, lines)
    for k, op in enumerate(ops):
        if op[0] == "commit":
            _, member, lines, redeem = op
            basket = checkout_pb2.EvaluateRequest(member_id=member, redeem_points=redeem)
            for j, (sku, quantity, price) in enumerate(lines):
                basket.lines.add(
                    line_id=str(j),
                    sku=target.skus[sku % len(target.skus)],
                    quantity=quantity,
                    unit_price_minor=price,
                )
            _call(target, BY_NAME["Evaluate"], basket.SerializeToString(), -1)  # the quote
            tx = f"fz-{run}-{k}"
            request = checkout_pb2.CommitRequest(transaction_id=tx, basket=basket)
            if _call(target, BY_NAME["Commit"], request.SerializeToString(), -1):
                committed.append((tx, len(lines)))
        elif op[0] in ("return", "cancel") and committed:
            _, which, line, quantity = op
            tx, n = committed[which % len(committed)]
            if op[0] == "cancel":
                data = checkout_pb2.CancelRequest(transaction_id=tx).SerializeToString()
                _call(target, BY_NAME["Cancel"], data, -1)
            else:
                data = checkout_pb2.ReturnRequest(
                    return_id=f"fz-{run}-{k}",
                    transaction_id=tx,
                    lines=[checkout_pb2.ReturnLine(line_id=str(line % n), quantity=quantity)],
                ).SerializeToString()
                _call(target, BY_NAME["Return"], data, -1)
        elif op[0] == "adjust":
            _, member, points = op
            data = members_pb2.AdjustPointsRequest(
                adjustment_id=f"fz-{run}-{k}", member_id=member, points=points, reason="fuzz"
            ).SerializeToString()
            _call(target, BY_NAME["AdjustPoints"], data, -1)


def test_valid_sequences_keep_members_and_ledger_in_agreement(target):
    @settings(SETTINGS, max_examples=25)
    @given(operations())
    def check(ops: list[tuple[Any, ...]]) -> None:
        _run(target, ops)
        _invariants(target, set(SHOPPERS))

    check()
    _still_serving(target)
