"""The wheel ships the product (engine, server, the loyalty.v1 stubs) and all of it."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_the_wheel_holds_every_product_package_and_no_benchmarks(tmp_path):
    # built from a copy of the tracked sources, so no build/ left over from another layout
    # can add to (or hide from) what the wheel holds
    src = tmp_path / "src"
    tracked = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    for name in tracked:
        if (ROOT / name).is_file():
            (src / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, src / name)
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation"]
        + ["-w", str(tmp_path), str(src)],
        check=True,
        capture_output=True,
        cwd=tmp_path,
        timeout=300,
    )
    (wheel,) = tmp_path.glob("loyalty_engine-*.whl")
    names = zipfile.ZipFile(wheel).namelist()

    tops = {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")}
    assert tops == {"engine", "server", "loyalty"}
    shipped = {n for n in names if n.endswith(".py")}
    for layer in ("engine", "server"):
        for source in (ROOT / layer).rglob("*.py"):
            assert source.relative_to(ROOT).as_posix() in shipped, f"{source} not in the wheel"
    assert "loyalty/v1/checkout_pb2.py" in shipped
