"""Rule sets as the YAML of a rule file: written, compared and annotated with problems.

The text is the rule-file form of ``engine.pricing.rules`` (proto field names, defaults left
out), with whole numbers written as numbers (protobuf's JSON form quotes 64-bit integers).
A problem's field path (``offers[2].percent_off.percent_bps``) is located on its YAML line, so
the console shows every problem at the line that holds the field.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from typing import Any

import yaml
from google.protobuf import descriptor, message

from engine.pricing.rules import rules_to_dict
from loyalty.v1 import rules_pb2

_INTS = {
    descriptor.FieldDescriptor.TYPE_INT64,
    descriptor.FieldDescriptor.TYPE_UINT64,
    descriptor.FieldDescriptor.TYPE_SINT64,
    descriptor.FieldDescriptor.TYPE_FIXED64,
    descriptor.FieldDescriptor.TYPE_SFIXED64,
}
_STEP = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


def _numbers(msg: message.Message, d: dict[str, Any]) -> None:
    """Turn the quoted 64-bit integers of ``MessageToDict`` back into numbers, in place."""
    for fd, value in msg.ListFields():
        if fd.name not in d:
            continue
        repeated = fd.is_repeated
        if fd.message_type is not None:
            if fd.message_type.full_name == "google.protobuf.Timestamp":
                continue
            if repeated:
                for sub, sub_d in zip(value, d[fd.name], strict=True):
                    _numbers(sub, sub_d)
            else:
                _numbers(value, d[fd.name])
        elif fd.type in _INTS:
            d[fd.name] = [int(v) for v in d[fd.name]] if repeated else int(d[fd.name])


def to_yaml(rules: rules_pb2.RuleSet) -> str:
    """The rule file of ``rules``, as YAML."""
    data = rules_to_dict(rules)
    _numbers(rules, data)
    if not data:
        return "{}\n"
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=100)


@dataclass(frozen=True, slots=True)
class DiffRow:
    """One row of a unified diff: ``kind`` is ``hunk``, ``same``, ``add`` or ``del``."""

    kind: str
    old: int | None
    new: int | None
    text: str


def diff_rows(old: str, new: str, context: int = 3) -> list[DiffRow]:
    """The unified diff of two texts as rows with their line numbers (empty: no change)."""
    rows: list[DiffRow] = []
    a, b = old.splitlines(), new.splitlines()
    for group in difflib.SequenceMatcher(None, a, b, autojunk=False).get_grouped_opcodes(context):
        first, last = group[0], group[-1]
        rows.append(
            DiffRow(
                "hunk",
                None,
                None,
                f"@@ -{first[1] + 1},{last[2] - first[1]} +{first[3] + 1},{last[4] - first[3]} @@",
            )
        )
        for tag, i1, i2, j1, j2 in group:
            if tag == "equal":
                rows += [
                    DiffRow("same", i + 1, j + 1, a[i])
                    for i, j in zip(range(i1, i2), range(j1, j2), strict=True)
                ]
                continue
            rows += [DiffRow("del", i + 1, None, a[i]) for i in range(i1, i2)]
            rows += [DiffRow("add", None, j + 1, b[j]) for j in range(j1, j2)]
    return rows


def unified(old: str, new: str, old_name: str, new_name: str) -> str:
    """The plain-text unified diff (for download)."""
    return "".join(
        difflib.unified_diff(
            old.splitlines(keepends=True), new.splitlines(keepends=True), old_name, new_name
        )
    )


def locate(text: str, path: str) -> int | None:
    """The 1-based line of the YAML node that ``path`` names, or of its deepest existing
    parent (a missing field is reported at its message); None when the text does not parse
    or holds nothing of the path."""
    try:
        node = yaml.compose(text)
    except yaml.YAMLError:
        return None
    if node is None:
        return None
    line = None
    for name, index in _STEP.findall(path):
        child = None
        if name and isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                if isinstance(key, yaml.ScalarNode) and key.value == name:
                    child, line = value, key.start_mark.line + 1
        elif index and isinstance(node, yaml.SequenceNode) and int(index) < len(node.value):
            child = node.value[int(index)]
            line = child.start_mark.line + 1
        if child is None:
            break
        node = child
    return line


@dataclass
class Listing:
    """A YAML text line by line, with the problems found on each line."""

    lines: list[tuple[int, str, list[str]]] = field(default_factory=list)
    unplaced: list[tuple[str, str]] = field(default_factory=list)

    def excerpt(self, context: int = 1) -> list[tuple[int, str, list[str]] | None]:
        """The lines with problems and ``context`` lines around them; None marks a gap."""
        keep = {n + d for n, _, ms in self.lines if ms for d in range(-context, context + 1)}
        out: list[tuple[int, str, list[str]] | None] = []
        for row in self.lines:
            if row[0] in keep:
                if out and out[-1] is not None and out[-1][0] != row[0] - 1:
                    out.append(None)
                out.append(row)
        return out

    @property
    def placed(self) -> list[tuple[int, str]]:
        """``(line, "field: description")`` of every problem placed on a line."""
        return [(n, m) for n, _, ms in self.lines for m in ms]


def annotate(text: str, problems: list[tuple[str, str]]) -> Listing:
    """``text`` with each problem ``(field, description)`` attached to its line."""
    at: dict[int, list[str]] = {}
    out = Listing()
    for path, description in problems:
        line = locate(text, path) if path else None
        if line is None:
            out.unplaced.append((path, description))
        else:
            at.setdefault(line, []).append(f"{path}: {description}")
    out.lines = [(n, t, at.get(n, [])) for n, t in enumerate(text.splitlines(), 1)]
    return out


def yaml_error_line(exc: BaseException) -> int | None:
    """The 1-based line a YAML parse error points at, when it says."""
    mark = getattr(exc, "problem_mark", None)
    return int(mark.line) + 1 if mark is not None else None
