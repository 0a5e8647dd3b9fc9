"""The simulation chart (``loyalty simulate --chart``): cost per offer and per funder, PNG."""

from __future__ import annotations

from pathlib import Path

from engine.analytics.simulate import Comparison
from engine.errors import InvalidInput


def chart(result: Comparison, path: str) -> None:
    """Per-offer discount under both rule sets and who pays it (vendors, retailer), as a PNG."""
    try:
        import matplotlib
    except ImportError:
        raise InvalidInput.at(
            "--chart", "drawing charts needs matplotlib: pip install 'loyalty-engine[plots]'"
        ) from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    offers = result.offers()
    cur, new = result.current.paid_by(), result.draft.paid_by()
    payers = sorted(set(cur) | set(new))
    fig, (a, b) = plt.subplots(1, 2, figsize=(12, max(3.0, 0.35 * len(offers) + 1.5)))
    y = range(len(offers))
    a.barh([i - 0.2 for i in y], offers["current_discount_minor"] / 100, 0.4, label="current")
    a.barh([i + 0.2 for i in y], offers["draft_discount_minor"] / 100, 0.4, label="draft")
    a.set_yticks(list(y), offers["offer_id"].to_list())
    a.set_xlabel("discount (major units)")
    a.set_title("cost per offer")
    a.legend()
    x = range(len(payers))
    b.bar([i - 0.2 for i in x], [cur.get(p, 0) / 100 for p in payers], 0.4, label="current")
    b.bar([i + 0.2 for i in x], [new.get(p, 0) / 100 for p in payers], 0.4, label="draft")
    b.set_xticks(list(x), payers)
    biggest = (
        result.current.max_basket_discount_minor / 100,
        result.draft.max_basket_discount_minor / 100,
    )
    b.set_title(f"who pays; biggest basket discount {biggest[0]:.2f} -> {biggest[1]:.2f}")
    b.legend()
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
