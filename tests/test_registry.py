"""The rule registry: publish, validate, roll back, catalogue import, persistence."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from engine.errors import FailedPrecondition, NotFound
from engine.pricing.catalogue import Catalogue, load_catalogue
from engine.pricing.rules import load_rules, parse_rules
from engine.pricing.validate import RuleSetInvalid
from server.rules.registry import RuleRegistry
from server.rules.versions import RedisVersions

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
NOW = datetime(2026, 11, 22, 8, 0, tzinfo=UTC)


@pytest.fixture
def registry(tmp_path):
    reg = RuleRegistry(tmp_path)
    yield reg
    reg.close()


def _rules(percent: int = 1000):
    return parse_rules(
        {
            "offers": [
                {
                    "id": "p",
                    "name": "Percent",
                    "scope": {"all": True},
                    "percent_off": {"percent_bps": percent},
                }
            ]
        }
    )


def test_nothing_is_current_before_the_first_publish(registry):
    assert not registry.ready
    with pytest.raises(FailedPrecondition):
        registry.current()


def test_publish_makes_a_new_current_version(registry):
    v1, _ = registry.publish(_rules(1000), "first", NOW)
    v2, seconds = registry.publish(_rules(2000), "second", NOW)
    assert (v1, v2) == (1, 2) and seconds >= 0
    current = registry.current()
    assert current.version == 2 and current.names == {"p": "Percent"}
    assert [(v.version, v.note, v.current) for v in registry.versions()] == [
        (1, "first", False),
        (2, "second", True),
    ]


def test_an_invalid_rule_set_is_refused_and_changes_nothing(registry):
    registry.publish(_rules(1000))
    with pytest.raises(RuleSetInvalid) as exc:
        registry.publish(_rules(12000))
    assert exc.value.violations[0].field == "offers[0].percent_off.percent_bps"
    assert registry.current().version == 1 and len(registry.versions()) == 1


def test_a_request_keeps_the_version_it_started_with(registry):
    registry.publish(_rules(1000))
    in_flight = registry.current()
    registry.publish(_rules(2000))
    assert in_flight.version == 1
    assert in_flight.compiled.rules.offers[0].percent_off.percent_bps == 1000
    assert registry.current().version == 2


def test_rollback_activates_an_earlier_version(registry):
    registry.publish(_rules(1000))
    registry.publish(_rules(2000))
    registry.activate(1)
    assert registry.current().version == 1
    assert registry.get().version == 1 and registry.get(2).current is False
    with pytest.raises(NotFound):
        registry.activate(7)


def test_versions_and_catalogue_survive_a_restart(tmp_path):
    reg = RuleRegistry(tmp_path)
    reg.import_catalogue(load_catalogue(EXAMPLES / "catalogue.csv"))
    reg.publish(load_rules(EXAMPLES / "watsons.yaml"), "watsons")
    reg.close()
    again = RuleRegistry(tmp_path)
    try:
        assert again.current().version == 1
        assert len(again.catalogue) == 9
        assert again.catalogue.get("GIFTCARD-100").no_discount
        assert again.current().compiled.rules.offers[0].id == "vip-skincare"
    finally:
        again.close()


def test_a_catalogue_that_breaks_the_current_rules_is_refused(registry):
    rules = parse_rules(
        {
            "offers": [
                {
                    "id": "b",
                    "scope": {"all": True},
                    "bundle_price": {
                        "components": [
                            {"scope": {"skus": ["A"]}, "qty": 1},
                            {"scope": {"categories": ["c"]}, "qty": 1},
                        ],
                        "price_minor": 100,
                    },
                }
            ]
        }
    )
    registry.publish(rules)
    overlapping = Catalogue.from_rows([{"sku": "A", "category": "c"}])
    with pytest.raises(RuleSetInvalid):
        registry.import_catalogue(overlapping)
    assert len(registry.catalogue) == 0


@pytest.fixture(params=["sqlite", "redis"])
def two_processes(request, tmp_path):
    """Two registries on the same versions, as two server processes would have."""
    if request.param == "redis":
        url = request.getfixturevalue("redis_url")
        made = [RuleRegistry(versions=RedisVersions(url)) for _ in range(2)]
    else:
        made = [RuleRegistry(tmp_path) for _ in range(2)]
    yield made
    for reg in made:
        reg.close()


def test_another_process_follows_publish_rollback_and_catalogue_import(two_processes):
    a, b = two_processes
    assert b.refresh() is False
    a.publish(_rules(1000))
    a.publish(_rules(2000))
    assert b.refresh() is True and b.current().version == 2
    assert b.current().compiled.rules.offers[0].percent_off.percent_bps == 2000
    a.activate(1)
    assert b.refresh() is True and b.current().version == 1
    a.import_catalogue(load_catalogue(EXAMPLES / "catalogue.csv"))
    assert b.refresh() is True and len(b.catalogue) == 9
    assert b.current().compiled.catalogue is b.catalogue
    assert b.refresh() is False  # nothing changed since


def test_the_watcher_thread_swaps_within_a_second(two_processes):
    a, b = two_processes
    b.watch(interval_s=0.5)
    swapped = []
    b.on_change(lambda active: swapped.append(time.monotonic()))
    start = time.monotonic()
    a.publish(_rules(1500))
    while not swapped and time.monotonic() - start < 5:
        time.sleep(0.01)
    assert swapped and swapped[0] - start < 1.0
    assert b.current().version == a.current().version
