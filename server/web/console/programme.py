"""The Programme page: rule-set versions with their notes, one version as YAML, the diff of
any two, a YAML editor that validates (problems shown at their line) and publishes, and
rollback (make an earlier version current again). Everything goes through CampaignService."""

from __future__ import annotations

import re
from typing import Any

import grpc
import yaml
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from engine.pricing.rules import RuleFileError, parse_rules
from loyalty.v1 import campaigns_pb2, rules_pb2
from server.web.console.common import call, render
from server.web.console.yamltext import annotate, diff_rows, to_yaml, yaml_error_line
from server.web.rpc import RpcFailure

SERVICE = "loyalty.v1.CampaignService"
MAX_NOTE = 1024
_AT = re.compile(r'at "RuleSet\.([^"]+)"')


async def list_versions(request: Request) -> campaigns_pb2.ListRuleSetsResponse:
    reply: campaigns_pb2.ListRuleSetsResponse = await call(
        request, f"{SERVICE}/ListRuleSets", campaigns_pb2.ListRuleSetsRequest()
    )
    return reply


async def get_version(request: Request, version: int) -> campaigns_pb2.RuleSetVersion | None:
    """Version ``version`` (0 = current); None when there is none (nothing published yet)."""
    try:
        reply: campaigns_pb2.RuleSetVersion = await call(
            request, f"{SERVICE}/GetRuleSet", campaigns_pb2.GetRuleSetRequest(version=version)
        )
    except RpcFailure as exc:
        if exc.code == grpc.StatusCode.NOT_FOUND and version == 0:
            return None
        raise
    return reply


def parse_text(text: str) -> tuple[rules_pb2.RuleSet | None, list[tuple[str, str]], int | None]:
    """The rule set of a YAML text, or the problem that stops reading it (with its line)."""
    try:
        yaml.safe_load(text)
    except yaml.YAMLError as exc:
        return None, [("rules", f"not valid YAML: {exc}")], yaml_error_line(exc)
    try:
        return parse_rules(text), [], None
    except RuleFileError as exc:
        message = str(exc)
        found = _AT.search(message)
        field = found.group(1) if found else "rules"
        return None, [(field, message)], None


async def _page(
    request: Request,
    *,
    text: str | None = None,
    note: str = "",
    problems: list[tuple[str, str]] | None = None,
    error_line: int | None = None,
    checked: bool = False,
    status_code: int = 200,
    **extra: Any,
) -> Response:
    listing = await list_versions(request)
    versions = list(reversed(listing.versions))  # newest first
    source = extra.pop("source", None)
    if text is None:
        wanted = int(request.query_params.get("edit", "0") or 0)
        found = await get_version(request, wanted)
        text = to_yaml(found.rules) if found is not None else ""
        source = found.version if found is not None else None
    annotated = annotate(text, problems or []) if problems else None
    if annotated is not None and error_line is not None:
        annotated.unplaced = []
        annotated.lines = [
            (n, t, [problems[0][1]] if n == error_line and problems else [])
            for n, t, _ in annotated.lines
        ]
    others = [v.version for v in versions if v.version != listing.current_version]
    return render(
        request,
        "programme.html",
        diff_old=others[0] if others else listing.current_version,
        status_code=status_code,
        versions=versions,
        current_version=listing.current_version,
        text=text,
        note=note,
        problems=problems or [],
        annotated=annotated,
        checked=checked,
        source=source,
        published=request.query_params.get("published", ""),
        activated=request.query_params.get("activated", ""),
        **extra,
    )


async def programme(request: Request) -> Response:
    return await _page(request)


async def _editor_form(request: Request) -> tuple[str, str]:
    form = await request.form()
    text = str(form.get("rules_yaml", ""))
    note = str(form.get("note", ""))[:MAX_NOTE]
    return text, note


async def validate(request: Request) -> Response:
    text, note = await _editor_form(request)
    rules, problems, line = parse_text(text)
    if rules is not None:
        reply: campaigns_pb2.ValidateRuleSetResponse = await call(
            request, f"{SERVICE}/ValidateRuleSet", campaigns_pb2.ValidateRuleSetRequest(rules=rules)
        )
        problems = [(p.field, p.description) for p in reply.problems]
    return await _page(
        request,
        text=text,
        note=note,
        problems=problems,
        error_line=line,
        checked=True,
        status_code=200 if not problems else 422,
    )


async def publish(request: Request) -> Response:
    text, note = await _editor_form(request)
    rules, problems, line = parse_text(text)
    if rules is not None:
        try:
            reply: campaigns_pb2.PublishRuleSetResponse = await call(
                request,
                f"{SERVICE}/PublishRuleSet",
                campaigns_pb2.PublishRuleSetRequest(rules=rules, note=note),
            )
        except RpcFailure as exc:
            # bad rules, or the guardrail gate's refusal (server.api.publish_gate): shown
            if exc.code not in (
                grpc.StatusCode.INVALID_ARGUMENT,
                grpc.StatusCode.FAILED_PRECONDITION,
            ):
                raise
            problems = exc.violations or [("rules", exc.message)]
        else:
            return RedirectResponse(f"/programme?published={reply.version}", status_code=303)
    return await _page(
        request,
        text=text,
        note=note,
        problems=problems,
        error_line=line,
        checked=True,
        status_code=422,
    )


async def activate(request: Request) -> Response:
    form = await request.form()
    try:
        version = int(str(form.get("version", "")))
    except ValueError:
        version = 0
    await call(
        request, f"{SERVICE}/ActivateRuleSet", campaigns_pb2.ActivateRuleSetRequest(version=version)
    )
    return RedirectResponse(f"/programme?activated={version}", status_code=303)


async def version_page(request: Request) -> Response:
    version = int(request.path_params["version"])
    found = await get_version(request, version)
    assert found is not None  # a version other than 0 is NOT_FOUND, answered by the guard
    listing = await list_versions(request)
    text = to_yaml(found.rules)
    return render(
        request,
        "programme_version.html",
        found=found,
        published_at=found.published_at.ToDatetime().strftime("%Y-%m-%d %H:%M:%S UTC"),
        offers=len(found.rules.offers),
        current_version=listing.current_version,
        lines=list(enumerate(text.splitlines(), 1)),
    )


def _version_arg(request: Request, name: str, default: int) -> int:
    try:
        return int(request.query_params.get(name, "") or default)
    except ValueError:
        return default


async def diff_page(request: Request) -> Response:
    listing = await list_versions(request)
    numbers = [v.version for v in listing.versions]
    current = listing.current_version
    before = [n for n in numbers if n < current]
    old = _version_arg(request, "old", before[-1] if before else current)
    new = _version_arg(request, "new", current)
    rows: list[Any] = []
    if numbers:
        old_v, new_v = await get_version(request, old), await get_version(request, new)
        assert old_v is not None and new_v is not None
        rows = diff_rows(to_yaml(old_v.rules), to_yaml(new_v.rules))
    return render(
        request,
        "programme_diff.html",
        versions=list(reversed(listing.versions)),
        old=old,
        new=new,
        rows=rows,
        added=sum(r.kind == "add" for r in rows),
        removed=sum(r.kind == "del" for r in rows),
    )


def routes() -> list[Route]:
    return [
        Route("/programme", programme, methods=["GET"], name="programme"),
        Route("/programme/validate", validate, methods=["POST"], name="programme-validate"),
        Route("/programme/publish", publish, methods=["POST"], name="programme-publish"),
        Route("/programme/activate", activate, methods=["POST"], name="programme-activate"),
        Route("/programme/diff", diff_page, methods=["GET"], name="programme-diff"),
        Route(
            "/programme/versions/{version:int}",
            version_page,
            methods=["GET"],
            name="programme-version",
        ),
    ]
