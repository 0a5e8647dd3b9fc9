"""Refresh the client's ``loyalty.v1`` stubs from the main package (run from the repository root
with the main environment: ``.venv/bin/python clients/python/generate.py``).

The client ships the *same* ``loyalty.v1`` modules as the main package, byte for byte, so the
two distributions can share one environment (whichever installs last writes identical files):

- ``*_pb2.py``, ``*_pb2.pyi``, ``*_pb2_grpc.py`` and the ``__init__.py`` files are copied from
  ``proto/loyalty`` (which ``scripts/gen_protos.py`` generates with grpcio-tools, and
  ``tests/test_proto_drift.py`` holds to the ``.proto`` sources);
- ``*_pb2_grpc.pyi`` (typed service stubs, not in the main package) is generated here by
  mypy-protobuf's ``protoc-gen-mypy_grpc`` plugin under grpcio-tools' protoc.

``--check`` compares instead of writing and exits 1 on a difference (what
``tests/test_client_package.py`` runs). mypy-protobuf is pinned (its output is compared byte for
byte): used from this environment if that version is installed, else installed once with pip
into ``build/tools/`` (``--no-deps``: it needs only protobuf, which is here).
"""

from __future__ import annotations

import argparse
import filecmp
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
PROTO_ROOT = ROOT / "proto"
TARGET = HERE / "src"  # holds loyalty/ and loyalty_client/
MYPY_PROTOBUF = "mypy-protobuf==5.1.0"
TOOLS = ROOT / "build" / "tools" / MYPY_PROTOBUF.replace("==", "-")
COPIED = ("__init__.py", "*_pb2.py", "*_pb2.pyi", "*_pb2_grpc.py")


def copied_files() -> list[Path]:
    """The main package's loyalty/ files the client ships as they are (relative paths)."""
    out = [Path("loyalty/__init__.py")]
    for pattern in COPIED:
        out += (p.relative_to(PROTO_ROOT) for p in (PROTO_ROOT / "loyalty" / "v1").glob(pattern))
    return sorted(set(out))


def _mypy_protobuf_path() -> Path | None:
    """A directory to put on sys.path for the pinned ``mypy_protobuf``, or None if that very
    version is installed here."""
    from importlib import metadata

    try:
        if metadata.version("mypy-protobuf") == MYPY_PROTOBUF.split("==")[1]:
            return None
    except metadata.PackageNotFoundError:
        pass
    if not (TOOLS / "mypy_protobuf" / "main.py").exists():
        subprocess.run(
            [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target"]
            + [str(TOOLS), MYPY_PROTOBUF],
            check=True,
            timeout=300,
        )
    return TOOLS


def generate_grpc_stubs(out: Path) -> None:
    """``loyalty/v1/*_pb2_grpc.pyi`` into ``out`` (mypy-protobuf under grpcio-tools' protoc)."""
    import grpc_tools
    from grpc_tools import protoc

    extra = _mypy_protobuf_path()
    with tempfile.TemporaryDirectory() as tmp:
        plugin = Path(tmp) / "protoc-gen-mypy_grpc"
        prelude = f"sys.path.insert(0, {str(extra)!r}); " if extra else ""
        plugin.write_text(
            f"#!{sys.executable}\nimport sys; {prelude}"
            "from mypy_protobuf.main import grpc; grpc()\n"
        )
        plugin.chmod(0o755)
        sources = sorted(str(p.relative_to(PROTO_ROOT)) for p in PROTO_ROOT.rglob("*.proto"))
        include = Path(grpc_tools.__file__).parent / "_proto"
        out.mkdir(parents=True, exist_ok=True)
        code = protoc.main(
            [
                "protoc",
                f"-I{PROTO_ROOT}",
                f"-I{include}",
                f"--plugin=protoc-gen-mypy_grpc={plugin}",
                f"--mypy_grpc_out=quiet:{out}",
                *sources,
            ]
        )
    if code != 0:
        raise SystemExit(f"protoc (mypy-protobuf) failed with exit code {code}")


def build(out: Path) -> list[Path]:
    """Everything the client's loyalty/ package holds, written under ``out``; relative paths."""
    for rel in copied_files():
        (out / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(PROTO_ROOT / rel, out / rel)
    generate_grpc_stubs(out)
    (out / "loyalty" / "py.typed").write_text("")  # PEP 561: the .pyi stubs are for type checkers
    return sorted(p.relative_to(out) for p in (out / "loyalty").rglob("*") if p.is_file())


def differences() -> list[str]:
    """What ``build`` would change in ``TARGET`` (empty when up to date)."""
    with tempfile.TemporaryDirectory() as tmp:
        fresh = build(Path(tmp))
        have = sorted(
            p.relative_to(TARGET)
            for p in (TARGET / "loyalty").rglob("*")
            if p.is_file() and "__pycache__" not in p.parts
        )
        problems = [f"{p}: missing" for p in fresh if p not in have]
        problems += [f"{p}: not generated (stale?)" for p in have if p not in fresh]
        problems += [
            f"{p}: differs"
            for p in fresh
            if p in have and not filecmp.cmp(Path(tmp) / p, TARGET / p, shallow=False)
        ]
    return problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare, write nothing")
    args = parser.parse_args()
    if args.check:
        problems = differences()
        for line in problems:
            print(line, file=sys.stderr)
        if problems:
            print("run: .venv/bin/python clients/python/generate.py", file=sys.stderr)
        return 1 if problems else 0
    stale = TARGET / "loyalty"
    if stale.exists():
        shutil.rmtree(stale)
    written = build(TARGET)
    print(f"wrote {len(written)} files under {os.path.relpath(stale)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
