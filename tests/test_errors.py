"""The error family and the one interceptor that gives each error its status.

A generic handler on a real gRPC server (port 0) raises each kind of error; the client must see
the documented status, field violations as a ``google.rpc.BadRequest`` detail, and for a bug
``INTERNAL`` with a request id that is also in the server's log.
"""

from __future__ import annotations

import ast
import logging
from collections.abc import Callable, Iterator
from concurrent import futures
from pathlib import Path

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status

import engine
from engine import errors
from engine.analytics.history import HistoryError
from engine.analytics.playbook import PlaybookError
from server.api.interceptors import CallInterceptor

API = Path(__file__).resolve().parents[1] / "server" / "api"


def test_every_error_of_the_engine_is_in_the_family():
    for cls in (
        engine.BasketError,
        engine.RuleSetInvalid,
        engine.RuleFileError,
        engine.CatalogueError,
        HistoryError,
        PlaybookError,
    ):
        assert issubclass(cls, errors.InvalidInput)
        assert issubclass(cls, ValueError)  # library users may catch ValueError as before


def test_invalid_input_collects_violations_and_names_them():
    bad = errors.InvalidInput()
    bad.add("lines[0].quantity", "must be at least 1 (got 0)")
    bad.add("member_id", "is required")

    assert [v.field for v in bad.violations] == ["lines[0].quantity", "member_id"]
    assert bad.field == "lines[0].quantity"
    assert str(bad) == "lines[0].quantity: must be at least 1 (got 0); member_id: is required"


def test_a_file_error_names_its_file_kind_as_the_field():
    exc = engine.CatalogueError("row 3: sku is empty")

    assert str(exc) == "row 3: sku is empty"
    assert exc.violations == (errors.Violation("catalogue", "row 3: sku is empty"),)


@pytest.fixture
def raising_server() -> Iterator[Callable[[BaseException], grpc.RpcError]]:
    """A server whose one method raises what the test gives it; returns the client's error."""
    to_raise: list[BaseException] = []

    def handle(request: bytes, context: grpc.ServicerContext) -> bytes:
        raise to_raise[-1]

    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=2), interceptors=[CallInterceptor()]
    )
    server.add_generic_rpc_handlers(
        [
            grpc.method_handlers_generic_handler(
                "test.Raise", {"Raise": grpc.unary_unary_rpc_method_handler(handle)}
            )
        ]
    )
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    call = channel.unary_unary("/test.Raise/Raise")

    def raise_(exc: BaseException) -> grpc.RpcError:
        to_raise.append(exc)
        with pytest.raises(grpc.RpcError) as info:
            call(b"", timeout=10)
        return info.value

    yield raise_
    channel.close()
    server.stop(None)


@pytest.mark.parametrize(
    ("exc", "code"),
    [
        (errors.NotFound("member m-1"), grpc.StatusCode.NOT_FOUND),
        (errors.AlreadyExists("issue i-1"), grpc.StatusCode.ALREADY_EXISTS),
        (errors.FailedPrecondition("cancelled"), grpc.StatusCode.FAILED_PRECONDITION),
        (errors.Conflict("busy"), grpc.StatusCode.ABORTED),
        (errors.Unavailable("redis down"), grpc.StatusCode.UNAVAILABLE),
        (errors.DeadlineExceeded("late"), grpc.StatusCode.DEADLINE_EXCEEDED),
    ],
)
def test_each_error_gets_its_status(raising_server, exc, code):
    err = raising_server(exc)

    assert err.code() == code
    assert err.details() == str(exc)


def test_bad_input_is_invalid_argument_with_every_field(raising_server):
    bad = errors.InvalidInput([("lines[1].sku", "is required"), ("member_id", "too long")])

    err = raising_server(bad)

    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    detail = error_details_pb2.BadRequest()
    assert rpc_status.from_call(err).details[0].Unpack(detail)
    assert [(v.field, v.description) for v in detail.field_violations] == [
        ("lines[1].sku", "is required"),
        ("member_id", "too long"),
    ]


def test_a_bug_is_internal_with_a_request_id_that_is_logged(raising_server, caplog):
    with caplog.at_level(logging.ERROR, logger="server.api.interceptors"):
        err = raising_server(ZeroDivisionError("division by zero"))

    assert err.code() == grpc.StatusCode.INTERNAL
    assert "division by zero" not in err.details()  # internals stay in the log
    request_id = err.details().rsplit(" ", 1)[-1].rstrip(")")
    assert len(request_id) == 16
    logged = [r for r in caplog.records if request_id in r.getMessage()]
    assert logged and logged[0].exc_info is not None


def _servicer_methods() -> Iterator[tuple[str, ast.FunctionDef]]:
    for path in sorted(API.glob("*.py")):
        tree = ast.parse(path.read_text())
        for cls in (n for n in tree.body if isinstance(n, ast.ClassDef)):
            if not any("Servicer" in ast.unparse(b) for b in cls.bases):
                continue
            for fn in cls.body:
                if isinstance(fn, ast.FunctionDef) and fn.name[:1].isupper():
                    yield f"{path.name}:{cls.name}.{fn.name}", fn


def test_servicer_methods_leave_errors_to_the_interceptor():
    methods = list(_servicer_methods())
    assert len(methods) >= 14  # the three services' RPCs
    for name, fn in methods:
        tries = [n for n in ast.walk(fn) if isinstance(n, ast.Try)]
        assert not tries, f"{name} catches exceptions itself"
        assert fn.returns is not None, f"{name} has no return annotation"
