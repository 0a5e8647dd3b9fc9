"""Regenerate the Python code for every .proto under proto/ (run: ``make proto``).

Output lands beside the sources (``proto/loyalty/v1/*_pb2*.py``) and is committed;
``tests/test_proto_drift.py`` fails when it no longer matches what this script produces.
"""

from __future__ import annotations

import sys
from pathlib import Path

PROTO_ROOT = Path(__file__).resolve().parent.parent / "proto"


def proto_files(root: Path = PROTO_ROOT) -> list[Path]:
    return sorted(root.rglob("*.proto"))


def generate(out_dir: Path, root: Path = PROTO_ROOT) -> None:
    """Run protoc (grpcio-tools) over every source, writing into ``out_dir``."""
    import grpc_tools
    from grpc_tools import protoc

    include = Path(grpc_tools.__file__).parent / "_proto"
    sources = [str(p.relative_to(root)) for p in proto_files(root)]
    args = [
        "protoc",
        f"-I{root}",
        f"-I{include}",
        f"--python_out={out_dir}",
        f"--pyi_out={out_dir}",
        f"--grpc_python_out={out_dir}",
        *sources,
    ]
    code = protoc.main(args)
    if code != 0:
        raise SystemExit(f"protoc failed with exit code {code}")


def main() -> None:
    generate(PROTO_ROOT)
    for package in (PROTO_ROOT / "loyalty", PROTO_ROOT / "loyalty" / "v1"):
        (package / "__init__.py").touch()
    print(f"generated code for {len(proto_files())} proto files", file=sys.stderr)


if __name__ == "__main__":
    main()
