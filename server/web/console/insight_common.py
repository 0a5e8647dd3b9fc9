"""What the insight pages share: the current rule set's currency, zone and version."""

from __future__ import annotations

from dataclasses import dataclass

from starlette.requests import Request

from loyalty.v1 import rules_pb2
from server.web.console.programme import get_version


@dataclass
class Rules:
    """What pages need of the current rule set (empty before the first publish)."""

    currency: str = ""
    timezone: str = ""
    version: int = 0
    rules: rules_pb2.RuleSet | None = None


async def current_rules(request: Request) -> Rules:
    found = await get_version(request, 0)
    if found is None:
        return Rules()
    return Rules(found.rules.currency, found.rules.timezone, found.version, found.rules)


__all__ = ["Rules", "current_rules"]
