"""The offline ``loyalty`` commands on the example programme in examples/."""

from __future__ import annotations

import json
from pathlib import Path

from server.cli.main import main

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
RULES = str(EXAMPLES / "watsons.yaml")
CATALOGUE = str(EXAMPLES / "catalogue.csv")
BASKET = str(EXAMPLES / "basket.json")


def test_rules_validate_accepts_the_example_programme(capsys):
    assert main(["rules", "validate", RULES, "--catalogue", CATALOGUE]) == 0
    assert "valid (12 offers, 3 tiers)" in capsys.readouterr().out


def test_rules_validate_lists_every_problem_and_fails(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "offers:\n  - {id: a, scope: {all: true}, percent_off: {percent_bps: 12000}}\n"
        "  - {id: a, scope: {all: true}}\n"
    )
    assert main(["rules", "validate", str(bad)]) == 1
    out = capsys.readouterr().out.splitlines()
    assert "offers[0].percent_off.percent_bps: must be at most 10000 (got 12000)" in out
    assert any(line.startswith("offers[1].id: duplicate id 'a'") for line in out)
    assert any(line.startswith("offers[1].reward: missing reward") for line in out)


def test_price_prints_the_receipt_of_the_example_basket(capsys):
    # given the example VIP basket on a Saturday, paying with every point allowed
    assert main(["price", "--rules", RULES, "--catalogue", CATALOGUE, BASKET, "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    # then (by hand): skincare 11980 - 2396 = 9584; one free cola 350; bundle 3180 -> 2500;
    # Panadol coupon 500 (GSK-funded); spend 9584+700+4500+2180+2500 = 19464 >= 10000 -> 1000
    # off; the gift card takes no discount and earns nothing
    assert result["gross_minor"] == 33390
    assert result["discount_minor"] == 2396 + 350 + 680 + 500 + 1000
    assert result["points_redeemed"] == 1200  # balance 1200 < half the net in points (1423)
    assert result["tender"] == "OK"
    funded = [d for line in result["lines"] for d in line["discounts"] if d["funder_id"] == "gsk"]
    assert funded == [
        {"offer_id": "panadol-coupon", "amount_minor": 500, "funder_id": "gsk", "funded_minor": 500}
    ]
    assert result["lines"][6]["points_earned"] == 0


def test_the_constructs_example_prices_each_construct_as_its_comment_says(capsys):
    from engine.pricing import catalogue as C
    from engine.pricing.reference.core import price_reference
    from engine.pricing.rules import load_rules
    from server.cli.offline import read_basket

    rules_file, basket_file = (
        str(EXAMPLES / "constructs.yaml"),
        str(EXAMPLES / "constructs-basket.json"),
    )
    assert main(["rules", "validate", rules_file, "--catalogue", CATALOGUE]) == 0
    assert "valid (8 offers, 0 tiers)" in capsys.readouterr().out
    assert (
        main(
            [
                "price",
                "--rules",
                rules_file,
                "--catalogue",
                CATALOGUE,
                basket_file,
                "--json",
                "--explain",
            ]
        )
        == 0
    )
    result = json.loads(capsys.readouterr().out)
    # then (by hand): the cheaper toothbrush 1290 -> 645; the shampoo 3990 at half, rhu -> 1995;
    # cola 100 + 3 x 50; rice 3 x 4500: rhu(13500 x 10%) = 1350 on 2 of 3 units -> 900; Panadol
    # 2680 <= 5000 -> 268; the travel bag free (olay pays); goods 48472 >= 10000 -> free delivery
    # (carrier pays half); the basket is above 100.00, so no 5.00 off
    off = {o["offer_id"]: o["discount_minor"] for o in result["offers"]}
    assert off == {
        "oral-care-cheapest-half": 645,
        "sunscreen-shampoo": 1995,
        "cola-flexi": 250,
        "rice-pairs": 900,
        "small-pain-relief": 268,
        "skincare-travel-bag": 2500,
        "free-delivery": 800,
    }
    assert result["gifts"] == [
        {
            "offer_id": "skincare-travel-bag",
            "sku": "BAG-TRAVEL",
            "quantity": 1,
            "in_basket": 1,
            "price_minor": 0,
        }
    ]
    [why] = result["explanations"]
    assert (why["offer_id"], why["reason"]) == ("small-basket-treat", "MAX_BASKET_EXCEEDED")
    assert result["lines"][9]["net_minor"] == 0  # the delivery line
    # and the reference twin gives the same
    basket, member, coupons, redeem = read_basket(basket_file)
    ref = price_reference(
        load_rules(rules_file), C.load_catalogue(CATALOGUE), basket, member, explain=True
    )
    assert ref.discount_minor == result["discount_minor"] == sum(off.values())


def test_price_reports_a_bad_basket_file_without_a_traceback(tmp_path, capsys):
    basket = tmp_path / "b.json"
    basket.write_text(
        json.dumps(
            {
                "occurred_at": "2026-11-21T10:00:00+08:00",
                "lines": [{"line_id": "1", "sku": "X", "quantity": 0, "unit_price_minor": 100}],
            }
        )
    )
    assert main(["price", "--rules", RULES, str(basket)]) == 2
    assert "lines[0].quantity: must be at least 1 (got 0)" in capsys.readouterr().err
