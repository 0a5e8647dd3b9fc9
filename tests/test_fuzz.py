"""Fuzzing every RPC of the three services over real gRPC, on both stores.

Messages are drawn from each method's request descriptor: every field of every nested message,
with edge values (empty and over-long strings, non-ASCII text, 0, -1, the int64 and int32
limits, unknown enum numbers, timestamps at and past the ends of time, empty and repeated
lists). Raw random bytes and wrong wire types are sent as well, and to a server that asks for
API keys, with no key, an unknown one, a role that may not and one that may. Whatever arrives,
the answer is a status from the documented set — never INTERNAL or UNKNOWN — and afterwards the
server still serves and every member it knows still reads.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import grpc
import pytest
from google.protobuf.descriptor import Descriptor, FieldDescriptor, MethodDescriptor
from google.protobuf.message import Message
from google.protobuf.message_factory import GetMessageClass
from grpc_health.v1 import health_pb2, health_pb2_grpc
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from loyalty.v1 import members_pb2, members_pb2_grpc
from server.api.app import LOYALTY, create_server
from server.cli.demo import load_demo
from server.settings import Settings

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
    """A server to fuzz: its channel, its app, and whether it asks for API keys."""

    def __init__(self, channel: grpc.Channel, app: Any, keyed: bool):
        self.channel, self.app, self.keyed = channel, app, keyed


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
        yield Target(channel, app, keyed)
    server.stop(None).wait()
    app.close()


def _call(target: Target, method: MethodDescriptor, data: bytes, key: int) -> None:
    path = f"/{method.containing_service.full_name}/{method.name}"
    metadata = METADATA[key] if target.keyed else ()
    expected = EXPECTED | KEYED if target.keyed else EXPECTED
    try:
        target.channel.unary_unary(path)(data, timeout=60, metadata=metadata)
    except grpc.RpcError as exc:
        assert exc.code() in expected, (path, exc.code(), exc.details())


def _still_serving(target: Target) -> None:
    health = health_pb2_grpc.HealthStub(target.channel).Check(
        health_pb2.HealthCheckRequest(), timeout=30
    )
    assert health.status == health_pb2.HealthCheckResponse.SERVING
    members = members_pb2_grpc.MemberServiceStub(target.channel)
    for k in range(1, 21):  # every demo member still reads
        members.GetMember(
            members_pb2.GetMemberRequest(member_id=f"M{10000 + k}"),
            timeout=30,
            metadata=METADATA[-1] if target.keyed else (),
        )


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
