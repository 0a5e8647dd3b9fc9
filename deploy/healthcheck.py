#!/usr/bin/env python3
"""Container health check: ``grpc.health.v1.Health/Check`` against the local server.

Exit status 0 when the server answers SERVING, 1 otherwise (NOT_SERVING, no answer within
the timeout, connection refused, TLS failure), with one line saying which; Docker marks the
container unhealthy after enough failures in a row. The server answers SERVING once a rule set
is active and its kernels are warm (server/api/app.py), so a server over an empty store stays
unhealthy until a rule set is published.

Where to call comes from the same variables as the server's settings: ``LOYALTY_PORT``
(default 50051) and ``LOYALTY_HOST`` (a wildcard address such as 0.0.0.0 means the loopback
address). With ``LOYALTY_TLS_CERT`` set the call uses TLS, trusting that certificate (right
for a self-signed one; pass ``--ca`` for a CA-issued one) and checking it against
``--tls-name`` (default ``localhost``). Health needs no API key.

Installed in the image as ``loyalty-healthcheck`` (Dockerfile); it uses only grpcio and
grpcio-health-checking, which the package depends on.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping, Sequence

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

WILDCARDS = {"", "0.0.0.0", "::", "[::]"}


def default_target(env: Mapping[str, str]) -> str:
    host = env.get("LOYALTY_HOST", "").strip()
    port = env.get("LOYALTY_PORT", "").strip() or "50051"
    if host in WILDCARDS:
        host = "127.0.0.1"
    elif ":" in host and not host.startswith("["):
        host = f"[{host}]"  # a bare IPv6 address
    return f"{host}:{port}"


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="loyalty-healthcheck", description=__doc__.split("\n")[0])
    p.add_argument("--target", help="HOST:PORT (default from LOYALTY_HOST and LOYALTY_PORT)")
    p.add_argument("--service", default="", help="service name; default: the whole server")
    p.add_argument("--timeout", type=float, default=3.0, help="seconds (default 3)")
    p.add_argument("--ca", help="PEM roots to trust (default: LOYALTY_TLS_CERT itself)")
    p.add_argument("--tls-name", default="localhost", help="name the certificate must carry")
    return p.parse_args(argv)


def check(args: argparse.Namespace, env: Mapping[str, str]) -> tuple[bool, str]:
    target = args.target or default_target(env)
    cert = env.get("LOYALTY_TLS_CERT", "").strip()
    if cert or args.ca:
        with open(args.ca or cert, "rb") as f:
            roots = f.read()
        channel = grpc.secure_channel(
            target,
            grpc.ssl_channel_credentials(root_certificates=roots),
            options=[("grpc.ssl_target_name_override", args.tls_name)],
        )
    else:
        channel = grpc.insecure_channel(target)
    try:
        stub = health_pb2_grpc.HealthStub(channel)
        reply = stub.Check(
            health_pb2.HealthCheckRequest(service=args.service), timeout=args.timeout
        )
    except grpc.RpcError as exc:
        return False, f"{target}: {exc.code().name}: {exc.details()}"
    finally:
        channel.close()
    status = health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
    return reply.status == health_pb2.HealthCheckResponse.SERVING, f"{target}: {status}"


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        healthy, line = check(args, os.environ)
    except OSError as exc:  # an unreadable certificate file
        healthy, line = False, f"cannot read TLS roots: {exc}"
    print(line, flush=True)
    return 0 if healthy else 1


if __name__ == "__main__":
    sys.exit(main())
