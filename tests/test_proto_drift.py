"""The committed generated code matches what ``make proto`` produces from proto/."""

from __future__ import annotations

import shutil
from pathlib import Path

from scripts.gen_protos import PROTO_ROOT, generate, proto_files


def generated(root: Path) -> list[Path]:
    """The generated sources under ``root`` (bytecode caches are not sources)."""
    return sorted(
        p.relative_to(root) for p in root.rglob("*_pb2*.py*") if "__pycache__" not in p.parts
    )


def test_generated_code_matches_the_proto_sources(tmp_path: Path):
    # given a fresh generation of every .proto into a scratch directory
    src = tmp_path / "proto"
    for f in proto_files():
        target = src / f.relative_to(PROTO_ROOT)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(f, target)
    generate(src, root=src)
    # then every generated file is committed, byte for byte
    fresh = generated(src)
    assert fresh, "protoc produced nothing"
    committed = generated(PROTO_ROOT)
    assert fresh == committed, "run `make proto` and commit the result"
    for rel in fresh:
        assert (src / rel).read_bytes() == (PROTO_ROOT / rel).read_bytes(), (
            f"{rel} is out of date: run `make proto`"
        )
