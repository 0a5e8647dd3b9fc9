"""The offer editor's form: an ``Offer`` message to form values and back, without YAML.

Every input is named by its field path in the ``Offer`` message (``conditions.min_qty``,
``spend_tiers.steps[1].threshold_minor``), so a validation problem at
``offers[k].<path>`` is shown next to the input named ``<path>``. Money is typed in the
programme's currency (``29.90``), rates as percentages (``20`` = 2000 bps), times in the
programme's time zone; lists as text separated by commas or new lines.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from google.protobuf import json_format

from loyalty.v1 import rules_pb2
from server.web.console import money
from server.web.console.yamltext import _numbers

Values = dict[str, Any]  # input name -> text (or a list of texts for multiple choices)

KINDS = (
    ("percent_off", "Percent off each item"),
    ("amount_off", "Amount off each unit"),
    ("fixed_price", "Fixed price per unit (member price)"),
    ("qty_tiers", "Quantity tiers: buy more, save more"),
    ("buy_x_get_y", "Buy X, get Y"),
    ("bundle_price", "Bundle price"),
    ("target_units", "Cheapest or most expensive units"),
    ("buy_get", "Buy from one set, get from another"),
    ("unit_rates", "First unit off, then each further unit off"),
    ("gift", "A gift product"),
    ("spend_tiers", "Spend tiers: spend 100, save 10"),
    ("order_percent_off", "Percent off the order"),
    ("order_amount_off", "Amount off the order"),
    ("delivery_off", "Off the delivery charge"),
    ("points_multiplier", "Points multiplier"),
    ("bonus_points", "Bonus points"),
)
KIND_NAMES = tuple(k for k, _ in KINDS)
ENUMS = {
    "activation": ("AUTOMATIC", "COUPON"),
    "stacking.mode": ("STACKABLE", "EXCLUSIVE", "EXCLUSIVE_ORDER"),
    "limits.per_member_period": ("EVER", "DAY", "WEEK", "MONTH"),
    "target_units.pick": ("CHEAPEST", "MOST_EXPENSIVE"),
}
# input name -> kind of value; "[]" marks repeated rows
FIELDS: dict[str, str] = {
    "id": "text",
    "name": "text",
    "description": "text",
    "activation": "enum",
    "scope.all": "bool",
    "scope.skus": "list",
    "scope.categories": "list",
    "scope.brands": "list",
    "scope.vendors": "list",
    "scope.exclude_skus": "list",
    "conditions.tiers": "multi",
    "conditions.segments": "multi",
    "conditions.stores": "list",
    "conditions.channels": "list",
    "conditions.starts_at": "time",
    "conditions.ends_at": "time",
    "conditions.weekdays": "days",
    "conditions.from_hour": "int32",
    "conditions.to_hour": "int32",
    "conditions.recurrence": "text",
    "conditions.birthday_month": "bool",
    "conditions.member_required": "bool",
    "conditions.min_basket_minor": "money",
    "conditions.min_qty": "int",
    "conditions.min_amount_minor": "money",
    "conditions.max_basket_minor": "money",
    "conditions.max_amount_minor": "money",
    # member-attribute tests, one row each (Conditions.attributes; ATTRIBUTE_CELLS)
    "conditions.attributes[].name": "text",
    "conditions.attributes[].any_of": "list",
    "conditions.attributes[].number.min": "int",
    "conditions.attributes[].number.max": "int",
    "conditions.attributes[].date.min": "text",
    "conditions.attributes[].date.max": "text",
    "stacking.priority": "int32",
    "stacking.mode": "enum",
    "stacking.group": "text",
    "funding.funder_id": "text",
    "funding.funded_share_bps": "percent",
    "limits.per_transaction": "int",
    "limits.per_member": "int",
    "limits.per_member_period": "enum",
    "limits.total_uses": "int",
    "limits.budget_minor": "money",
    "limits.max_discount_minor": "money",
    "limits.total_units": "int",
    "limits.units_per_store": "int",
    "limits.max_units_per_line": "int",
    "limits.max_units": "int",
    "limits.units_in_groups_of": "int",
}
REWARD_FIELDS: dict[str, dict[str, str]] = {
    "percent_off": {"percent_bps": "percent"},
    "amount_off": {"amount_minor": "money"},
    "fixed_price": {"price_minor": "money"},
    "qty_tiers": {"steps[].min_qty": "int", "steps[].percent_bps": "percent"},
    "buy_x_get_y": {"buy": "int", "get": "int", "percent_bps": "percent"},
    "target_units": {
        "pick": "enum",
        "units": "int",
        "every": "int",
        "percent_bps": "percent",
        "amount_minor": "money",
        "price_minor": "money",
    },
    "buy_get": {
        "get.all": "bool",
        "get.skus": "list",
        "get.categories": "list",
        "get.brands": "list",
        "get.vendors": "list",
        "get.exclude_skus": "list",
        "buy_qty": "int",
        "get_qty": "int",
        "percent_bps": "percent",
        "amount_minor": "money",
        "price_minor": "money",
    },
    "unit_rates": {"first_minor": "money", "additional_minor": "money", "max_units": "int"},
    "gift": {"sku": "text", "quantity": "int", "price_minor": "money"},
    "delivery_off": {"percent_bps": "percent", "amount_minor": "money", "price_minor": "money"},
    "bundle_price": {
        "components[].scope.skus": "list",
        "components[].scope.categories": "list",
        "components[].scope.brands": "list",
        "components[].scope.vendors": "list",
        "components[].scope.exclude_skus": "list",
        "components[].scope.all": "bool",
        "components[].qty": "int",
        "price_minor": "money",
    },
    "spend_tiers": {
        "steps[].threshold_minor": "money",
        "steps[].amount_minor": "money",
        "steps[].percent_bps": "percent",
        "repeat": "bool",
    },
    "order_percent_off": {"percent_bps": "percent"},
    "order_amount_off": {"amount_minor": "money"},
    "points_multiplier": {"extra_bps": "percent"},
    "bonus_points": {"per_unit": "int", "per_transaction": "int"},
}
MIN_ROWS = 2
ATTRIBUTES = "conditions.attributes"  # the rows of member-attribute tests
ATTRIBUTE_CELLS = tuple(n.split("[].")[1] for n in FIELDS if n.startswith(ATTRIBUTES + "[]"))
_ROW = re.compile(r"^(.*?)\[(\d+)\]\.(.+)$")
_INDEX = re.compile(r"\[\d+\]")
INT32 = 2**31 - 1
INT64 = 2**63 - 1


def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def kind_of(values: Mapping[str, Any]) -> str:
    kind = str(values.get("kind", ""))
    return kind if kind in KIND_NAMES else "percent_off"


def spec(kind: str) -> dict[str, str]:
    """Every input of the form for ``kind``: name (``[]`` for rows) -> kind of value."""
    return {**FIELDS, **{f"{kind}.{k}": v for k, v in REWARD_FIELDS[kind].items()}}


# -- Offer -> form -----------------------------------------------------------------------------


def _flatten(data: Any, prefix: str, out: dict[str, Any]) -> None:
    if isinstance(data, dict):
        for k, v in data.items():
            _flatten(v, f"{prefix}.{k}" if prefix else k, out)
    elif isinstance(data, list) and data and isinstance(data[0], dict):
        for i, v in enumerate(data):
            _flatten(v, f"{prefix}[{i}]", out)
    else:
        out[prefix] = data


def _show(kind: str, value: Any, currency: str, tz: ZoneInfo) -> Any:
    if kind == "money":
        return money.money_input(int(value), currency)
    if kind == "percent":
        return money.percent_input(int(value))
    if kind == "bool":
        return "on" if value else ""
    if kind == "list":
        return ", ".join(str(v) for v in value)
    if kind in ("multi", "days"):
        return [str(v) for v in value]
    if kind == "time":
        when = datetime.fromisoformat(str(value).replace("Z", "+00:00")).astimezone(tz)
        return when.strftime("%Y-%m-%dT%H:%M")
    return str(value)


def values_from_offer(offer: rules_pb2.Offer, currency: str, timezone: str) -> Values:
    """The form's values for ``offer``."""
    data = json_format.MessageToDict(offer, preserving_proto_field_name=True)
    _numbers(offer, data)
    flat: dict[str, Any] = {}
    _flatten(data, "", flat)
    kind = offer.WhichOneof("reward") or "percent_off"
    names = spec(kind)
    values: Values = {"kind": kind}
    tz = zone(timezone)
    for name, value in flat.items():
        kind_of_value = names.get(_INDEX.sub("[]", name))
        if kind_of_value is not None:
            values[name] = _show(kind_of_value, value, currency, tz)
    return values


# -- form -> Offer -----------------------------------------------------------------------------


@dataclass
class Parsed:
    """An offer read from the form, the inputs that could not be read, and where each
    message row (``spend_tiers.steps[0]``) came from in the form (``...steps[2]``)."""

    offer: rules_pb2.Offer
    errors: dict[str, str] = field(default_factory=dict)
    rows: dict[str, str] = field(default_factory=dict)


def _items(text: str) -> list[str]:
    return [x.strip() for x in re.split(r"[,\n]", text) if x.strip()]


def _read(kind: str, raw: Any, currency: str, tz: ZoneInfo) -> Any:
    """The message value of one input; ValueError with the reason when it cannot be read."""
    if kind in ("multi", "days"):
        items = raw if isinstance(raw, list) else [] if raw is None else [raw]
        items = [str(x) for x in items if str(x)]
        if kind == "days" and not all(x.isdigit() for x in items):
            raise ValueError("must be weekdays 1 (Monday) to 7 (Sunday)")
        return [int(x) for x in items] if kind == "days" else items
    text = str(raw if raw is not None else "").strip()
    if kind == "bool":
        return text not in ("", "off", "false", "0")
    if kind == "list":
        return _items(text)
    if kind in ("text", "enum"):
        return text
    if not text:
        return None
    if kind == "time":
        try:
            local = datetime.fromisoformat(text)
        except ValueError:
            raise ValueError("must be a date and time, e.g. 2026-12-01T09:00") from None
        if local.tzinfo is None:
            local = local.replace(tzinfo=tz)
        return local.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    if kind == "money":
        value = money.parse_money(text, currency)
    elif kind == "percent":
        value = money.parse_percent(text)
    else:
        try:
            value = int(text.replace(",", "").replace("_", ""))
        except ValueError:
            raise ValueError("must be a whole number") from None
    limit = INT32 if kind in ("percent", "int32") else INT64
    if not -limit <= value <= limit:
        raise ValueError("is far too large")
    return value


def _put(target: dict[str, Any], path: str, value: Any) -> None:
    """Set ``a.b[2].c`` in nested dicts and lists."""
    node: Any = target
    parts = path.split(".")
    for i, part in enumerate(parts):
        m = re.fullmatch(r"(.+)\[(\d+)\]", part)
        last = i == len(parts) - 1
        if m:
            seq = node.setdefault(m.group(1), [])
            idx = int(m.group(2))
            while len(seq) <= idx:
                seq.append({})
            if last:
                seq[idx] = value
            node = seq[idx]
        elif last:
            node[part] = value
        else:
            node = node.setdefault(part, {})


def _empty(value: Any) -> bool:
    return value is None or value == "" or value == [] or value is False


def offer_from_values(values: Mapping[str, Any], currency: str, timezone: str) -> Parsed:
    """The offer the form describes; inputs that cannot be read are left out and named in
    ``errors`` (validation then adds what is missing)."""
    tz, kind = zone(timezone), kind_of(values)
    names = spec(kind)
    data: dict[str, Any] = {kind: {}}
    errors: dict[str, str] = {}
    rowed: dict[str, dict[int, dict[str, Any]]] = {}
    for name, value_kind in names.items():
        if "[]" in name:
            continue
        try:
            value = _read(value_kind, values.get(name), currency, tz)
        except ValueError as exc:
            errors[name] = str(exc)
            continue
        if value_kind == "enum" and value and value not in ENUMS[name]:
            errors[name] = f"must be one of {', '.join(ENUMS[name])}"
        elif value_kind == "enum" and value == ENUMS[name][0]:
            continue
        elif not _empty(value):
            _put(data, name, value)
    for name, raw in values.items():
        m = _ROW.match(name)
        if m is None or f"{m.group(1)}[].{m.group(3)}" not in names:
            continue
        value_kind = names[f"{m.group(1)}[].{m.group(3)}"]
        try:
            value = _read(value_kind, raw, currency, tz)
        except ValueError as exc:
            errors[name] = str(exc)
            value = "?"  # keeps the row: its other inputs still show their problems
        rows = rowed.setdefault(m.group(1), {})
        row = rows.setdefault(int(m.group(2)), {})
        if not _empty(value):
            row[m.group(3)] = value
    mapping: dict[str, str] = {}
    for prefix, rows in rowed.items():
        kept = [i for i in sorted(rows) if rows[i]]
        for j, i in enumerate(kept):
            mapping[f"{prefix}[{j}]"] = f"{prefix}[{i}]"
            for sub, value in rows[i].items():
                if value != "?":
                    _put(data, f"{prefix}[{j}].{sub}", value)
    offer = rules_pb2.Offer()
    try:
        json_format.ParseDict(data, offer)
    except json_format.ParseError as exc:
        errors[""] = f"the offer cannot be built: {exc}"
    return Parsed(offer, errors, mapping)


def rows(values: Mapping[str, Any], prefix: str, minimum: int = MIN_ROWS, add: int = 0) -> int:
    """How many rows the form shows for ``prefix`` (``spend_tiers.steps``)."""
    found = [int(m.group(2)) for n in values if (m := _ROW.match(n)) and m.group(1) == prefix]
    return max(max(found, default=-1) + 1, minimum) + add


def place(path: str, parsed: Parsed, names: set[str]) -> str:
    """The input (or section) where the problem at offer path ``path`` is shown: the path
    itself, else its nearest enclosing input or section; "" for the whole form."""
    for message_row, form_row in parsed.rows.items():
        if path == message_row or path.startswith(message_row + "."):
            path = form_row + path[len(message_row) :]
            break
    while path:
        if path in names:
            return path
        stripped = re.sub(r"(\[\d+\]|\.[^.\[\]]+)$", "", path)
        if stripped == path:
            break
        path = stripped
    return path if path in names else ""


def merge(
    current: rules_pb2.RuleSet | None, offer: rules_pb2.Offer, original_id: str
) -> tuple[rules_pb2.RuleSet, int]:
    """The current rule set with ``offer`` in place of ``original_id`` (or added last)."""
    draft = rules_pb2.RuleSet()
    if current is not None:
        draft.CopyFrom(current)
    for k, existing in enumerate(draft.offers):
        if original_id and existing.id == original_id:
            existing.CopyFrom(offer)
            return draft, k
    draft.offers.append(offer)
    return draft, len(draft.offers) - 1
