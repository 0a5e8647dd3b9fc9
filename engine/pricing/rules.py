"""Rule files: YAML or JSON in the shape of the ``loyalty.v1.RuleSet`` message."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml
from google.protobuf import json_format

from engine.errors import InvalidFile
from loyalty.v1 import rules_pb2

RuleSet = rules_pb2.RuleSet


class RuleFileError(InvalidFile):
    """A rule file cannot be read as a RuleSet; the message names the field when it can."""

    subject = "rules"


def parse_rules(data: dict[str, Any] | str | bytes) -> rules_pb2.RuleSet:
    """Build a RuleSet from a mapping, or from YAML/JSON text (JSON is a subset of YAML)."""
    if isinstance(data, bytes):
        data = data.decode("utf-8")
    if isinstance(data, str):
        try:
            data = yaml.safe_load(data)
        except yaml.YAMLError as exc:
            raise RuleFileError(f"not valid YAML/JSON: {exc}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise RuleFileError("the rule file must hold a mapping at the top level")
    # YAML turns ISO timestamps into datetimes; protobuf's JSON form wants strings.
    plain: dict[str, Any] = json.loads(json.dumps(data, default=_iso))
    try:
        return json_format.ParseDict(plain, rules_pb2.RuleSet(), ignore_unknown_fields=False)
    except json_format.ParseError as exc:
        raise RuleFileError(str(exc)) from None


def load_rules(path: str | Path) -> rules_pb2.RuleSet:
    """Read a ``.yaml``/``.yml``/``.json`` rule file."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise RuleFileError(f"{p}: {exc.strerror}") from None
    try:
        return parse_rules(text)
    except RuleFileError as exc:
        raise RuleFileError(f"{p.name}: {exc}") from None


def rules_to_dict(rules: rules_pb2.RuleSet) -> dict[str, Any]:
    """The file form of a RuleSet (proto field names, defaults omitted)."""
    return json_format.MessageToDict(rules, preserving_proto_field_name=True)


def _iso(value: Any) -> str:
    if hasattr(value, "isoformat"):
        text: str = value.isoformat()
        # a bare date or a naive datetime from YAML is read as UTC
        if "T" not in text:
            text += "T00:00:00"
        if value.__class__.__name__ == "date" or getattr(value, "tzinfo", None) is None:
            text += "Z"
        return text
    raise TypeError(f"cannot represent {value!r} in a rule file")
