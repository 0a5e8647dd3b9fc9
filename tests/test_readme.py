"""The README's first Python example runs as written and says what it claims."""

from __future__ import annotations

import os
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_readme_python_example_runs(monkeypatch):
    blocks = re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), re.S)
    monkeypatch.chdir(ROOT)
    scope: dict = {}
    exec(compile(blocks[0], "README.md", "exec"), scope)  # noqa: S102 - our own README
    result = scope["result"]
    # 2 x 59.90 skincare at 20% off for a VIP (9584), 3 colas with one free (700): 10284
    # reaches the first spend step, 1000 off
    assert result.net_minor == 9584 + 700 - 1000
    assert [o.offer_id for o in result.offers] == ["vip-skincare", "cola-3for2", "spend-ladder",
                                                   "weekend-double-points"]
    assert os.path.exists(ROOT / "examples" / "watsons.yaml")
