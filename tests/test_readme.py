"""The README's Python examples run as written and say what they claim."""

from __future__ import annotations

import re
from pathlib import Path

from server.api.app import create_server
from server.cli.demo import load_demo
from server.settings import Settings

ROOT = Path(__file__).resolve().parent.parent


def _block(containing: str) -> str:
    blocks = re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), re.S)
    return next(b for b in blocks if containing in b)


def test_readme_engine_example_runs(monkeypatch):
    monkeypatch.chdir(ROOT)
    scope: dict = {}
    exec(compile(_block("engine.price("), "README.md", "exec"), scope)  # noqa: S102
    result = scope["result"]
    # 2 x 59.90 skincare at 20% off for a VIP (9584), 3 colas with one free (700): 10284
    # reaches the first spend step, 1000 off
    assert result.net_minor == 9584 + 700 - 1000
    assert [o.offer_id for o in result.offers] == [
        "vip-skincare",
        "cola-3for2",
        "spend-ladder",
        "weekend-double-points",
    ]


def test_readme_client_example_runs_against_the_demo(tmp_path, capsys):
    settings = Settings(port=0, data_dir=tmp_path)
    server, port, app = create_server(settings)
    load_demo(app.registry, app.store, members=20)
    server.start()
    try:
        code = _block("checkout_pb2_grpc.CheckoutServiceStub").replace(
            "127.0.0.1:50051", f"127.0.0.1:{port}"
        )
        scope: dict = {}
        exec(compile(code, "README.md", "exec"), scope)  # noqa: S102
        scope["channel"].close()
        quote, done = scope["quote"], scope["done"]
        assert quote.payable_minor > 0 and not done.changed_from_quote
        assert done.member.member_id == "M10004"
        assert done.member.pending_points == quote.points_earned
    finally:
        server.stop(None).wait()
        app.close()
    assert capsys.readouterr().out.strip()  # it printed the quote


def test_readme_documents_every_setting_and_only_real_ones():
    from server.settings import OPTIONS

    readme = (ROOT / "README.md").read_text()
    table = readme[readme.index("## Configuration") : readme.index("## Production")]
    documented = set(re.findall(r"`(LOYALTY_[A-Z_]+)", table))
    declared = {o.env for o in OPTIONS}
    assert declared <= documented, f"undocumented: {sorted(declared - documented)}"
    assert documented <= declared, f"not settings: {sorted(documented - declared)}"
