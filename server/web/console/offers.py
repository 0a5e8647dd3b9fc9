"""The offer editor: the current rule set's offers, a form per reward kind (``/offers/new``,
``/offers/{id}/edit``), a live preview of a sample basket priced with the draft (the current
rules plus this offer), and Save = publish the current rule set plus the offer as a new
version with a note.

Without JavaScript every button posts the whole form to ``/offers/editor`` (``op`` says what
to do: ``preview``, ``kind``, ``add:<rows>``, ``save``) and gets the page back; with htmx a
change anywhere re-prices the preview (``/offers/preview``) and the kind selector swaps in its
fields. Save refuses when another version was published since the editor opened
(``base_version``), so nobody's change is overwritten unseen.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import grpc
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

import engine
from loyalty.v1 import campaigns_pb2, rules_pb2
from server.web.console import offer_form as F
from server.web.console import preview as P
from server.web.console.common import call, render, run_blocking
from server.web.console.programme import SERVICE, get_version
from server.web.rpc import RpcFailure

SECTIONS = ("scope", "conditions", "stacking", "funding", "limits", "reward", "id")
ROW_MINIMUM = {"steps": 2, "components": 2}


@dataclass
class Evaluation:
    """The draft and what the editor shows about it."""

    values: F.Values
    draft: rules_pb2.RuleSet
    offer: rules_pb2.Offer
    index: int
    rows: dict[str, int]
    parsed: F.Parsed
    errors: dict[str, str] = field(default_factory=dict)
    problems: list[tuple[str, str]] = field(default_factory=list)
    preview: dict[str, Any] | None = None

    @property
    def ok(self) -> bool:
        return not self.errors and not self.problems


def row_counts(values: F.Values, kind: str, add: str = "") -> dict[str, int]:
    """Rows shown per repeated part of the form (reward steps/components, basket lines)."""
    counts = {}
    for name in F.REWARD_FIELDS[kind]:
        if "[]" in name:
            part = name.split("[]")[0]
            prefix = f"{kind}.{part}"
            counts[prefix] = F.rows(values, prefix, ROW_MINIMUM.get(part, 1), int(add == prefix))
    counts[F.ATTRIBUTES] = F.rows(values, F.ATTRIBUTES, 1, int(add == F.ATTRIBUTES))
    lines = "basket.lines"
    counts[lines] = F.rows(values, lines, P.MIN_LINES, int(add == lines))
    return counts


def input_names(kind: str, rows: dict[str, int]) -> set[str]:
    names = {n for n in F.spec(kind) if "[]" not in n}
    for name in F.REWARD_FIELDS[kind]:
        if "[]" in name:
            part, sub = name.split("[].")
            prefix = f"{kind}.{part}"
            names |= {f"{prefix}[{i}].{sub}" for i in range(rows[prefix])} | {prefix}
    attrs = F.ATTRIBUTES
    names |= {f"{attrs}[{i}].{c}" for i in range(rows.get(attrs, 0)) for c in F.ATTRIBUTE_CELLS}
    return names | set(SECTIONS) | {kind, attrs}


def evaluate(
    current: rules_pb2.RuleSet | None,
    values: F.Values,
    original_id: str,
    add: str = "",
    with_preview: bool = True,
) -> Evaluation:
    """Read the form, merge the offer into the current rules, validate the draft (with the
    engine, no catalogue) and price the sample basket when it is valid."""
    currency = current.currency if current is not None else ""
    timezone = current.timezone if current is not None else ""
    kind = F.kind_of(values)
    parsed = F.offer_from_values(values, currency, timezone)
    draft, index = F.merge(current, parsed.offer, original_id)
    rows = row_counts(values, kind, add)
    ev = Evaluation(values, draft, parsed.offer, index, rows, parsed)
    names = input_names(kind, rows)
    found = [(v.field, v.description) for v in engine.validate(draft)]
    ev.problems, ev.errors = placed(found, index, parsed, names)
    for name, why in parsed.errors.items():
        if name:
            ev.errors[name] = why
        else:
            ev.problems.append(("", why))
    if not with_preview:
        return ev
    sample, sample_errors = P.parse_sample(values, currency, timezone, parsed.offer.id)
    ev.errors |= sample_errors
    if sample is not None and ev.ok:
        result, basket_errors = P.price_sample(draft, sample)
        ev.errors |= basket_errors
        if result is not None:
            ev.preview = P.describe(result, sample, draft, parsed.offer)
    return ev


def placed(
    violations: list[tuple[str, str]], index: int, parsed: F.Parsed, names: set[str]
) -> tuple[list[tuple[str, str]], dict[str, str]]:
    """Problems of the draft: those of this offer at their input, the rest for the page."""
    prefix = f"offers[{index}]."
    general: list[tuple[str, str]] = []
    errors: dict[str, str] = {}
    for field_, description in violations:
        name = F.place(field_[len(prefix) :], parsed, names) if field_.startswith(prefix) else ""
        if name:
            errors[name] = f"{errors[name]}; {description}" if name in errors else description
        else:
            general.append((field_, description))
    return general, errors


def form_values(form: FormData) -> F.Values:
    values: F.Values = {}
    for name in form:
        items = [str(v) for v in form.getlist(name)]
        multi = name in ("conditions.tiers", "conditions.segments", "conditions.weekdays")
        values[name] = items if multi or name == "member.segments" else items[-1]
    return values


def _version(form: FormData) -> int:
    """The form's ``base_version`` (the version the editor started from)."""
    text = str(form.get("base_version", "0"))
    return int(text) if text.isdigit() else 0


async def current_version(request: Request) -> campaigns_pb2.RuleSetVersion | None:
    return await get_version(request, 0)


def _options(rules: rules_pb2.RuleSet | None, values: F.Values) -> dict[str, Any]:
    tiers = [(t.id, t.name or t.id) for t in rules.tiers] if rules is not None else []
    segments = [(s.id, s.name or s.id) for s in rules.segments] if rules is not None else []
    for options, name in ((tiers, "conditions.tiers"), (segments, "conditions.segments")):
        known = {v for v, _ in options}
        options += [
            (v, f"{v} (not in the programme)") for v in values.get(name) or [] if v not in known
        ]
    return {
        "tiers": tiers,
        "segments": segments,
        "member_tiers": [(P.GUEST, "Guest (not a member)"), (P.NO_TIER, "Member without a tier")]
        + [(t.id, t.name or t.id) for t in (rules.tiers if rules is not None else [])],
        "member_segments": [(s.id, s.name or s.id) for s in (rules.segments if rules else [])],
        "months": [("0", "unknown")] + [(str(m), calendar.month_name[m]) for m in range(1, 13)],
    }


def _editor(
    request: Request,
    ev: Evaluation,
    current: campaigns_pb2.RuleSetVersion | None,
    *,
    original_id: str,
    base_version: int,
    note: str = "",
    status_code: int = 200,
    fragment: bool = False,
) -> Response:
    rules = current.rules if current is not None else None
    context = {
        "values": ev.values,
        "errors": ev.errors,
        "problems": ev.problems,
        "preview": ev.preview,
        "rows": ev.rows,
        "kind": F.kind_of(ev.values),
        "kinds": F.KINDS,
        "enums": F.ENUMS,
        "currency": rules.currency if rules is not None else "",
        "timezone": (rules.timezone if rules is not None else "") or "UTC",
        "points_programme": rules is not None and rules.HasField("points"),
        "original_id": original_id,
        "base_version": base_version,
        "note": note,
        **_options(rules, ev.values),
    }
    template = "offer_preview.html" if fragment else "offer_editor.html"
    return render(request, template, status_code=status_code, **context)


async def offers_page(request: Request) -> Response:
    current = await current_version(request)
    rows = []
    for offer in current.rules.offers if current is not None else []:
        rows.append(
            {
                "id": offer.id,
                "name": offer.name,
                "kind": dict(F.KINDS).get(offer.WhichOneof("reward") or "", "—"),
                "activation": rules_pb2.Offer.Activation.Name(offer.activation),
                "priority": offer.stacking.priority,
                "funder": offer.funding.funder_id or "retailer",
            }
        )
    return render(
        request,
        "offers.html",
        offers=rows,
        version=current.version if current is not None else None,
        saved=request.query_params.get("saved", ""),
        published=request.query_params.get("version", ""),
    )


async def new_offer(request: Request) -> Response:
    current = await current_version(request)
    kind = request.query_params.get("kind", "percent_off")
    offer = rules_pb2.Offer(scope=rules_pb2.ProductSet(all=True))
    getattr(offer, kind if kind in F.KIND_NAMES else "percent_off").SetInParent()
    return await _open(request, current, offer, "")


async def edit_offer(request: Request) -> Response:
    current = await current_version(request)
    offer_id = request.path_params["offer_id"]
    found = [o for o in (current.rules.offers if current is not None else []) if o.id == offer_id]
    if not found:
        return render(
            request,
            "error.html",
            status_code=404,
            title="No such offer",
            message=f"The current rule set has no offer {offer_id!r}.",
        )
    return await _open(request, current, found[0], offer_id)


async def _open(
    request: Request,
    current: campaigns_pb2.RuleSetVersion | None,
    offer: rules_pb2.Offer,
    original_id: str,
) -> Response:
    rules = current.rules if current is not None else None
    currency, timezone = (rules.currency, rules.timezone) if rules is not None else ("", "")
    values = F.values_from_offer(offer, currency, timezone)
    values |= P.default_values(offer, datetime.now(UTC), timezone)
    if rules is not None and rules.tiers:
        values["member.tier"] = rules.tiers[0].id
    ev = await run_blocking(evaluate, rules, values, original_id, "", bool(offer.id))
    if not offer.id:  # a new offer: no problems shown before anything is typed
        ev.errors, ev.problems = {}, []
    base = current.version if current is not None else 0
    note = f"{'Change' if original_id else 'New'} offer in the console"
    return _editor(request, ev, current, original_id=original_id, base_version=base, note=note)


async def preview(request: Request) -> Response:
    """The preview panel alone (htmx)."""
    form = await request.form()
    current = await current_version(request)
    values = form_values(form)
    ev = await run_blocking(
        evaluate, current.rules if current else None, values, str(form.get("original_id", ""))
    )
    return _editor(
        request,
        ev,
        current,
        original_id=str(form.get("original_id", "")),
        base_version=_version(form),
        fragment=True,
    )


async def editor(request: Request) -> Response:
    """The whole editor after one of its buttons (also the page without JavaScript)."""
    form = await request.form()
    values = form_values(form)
    op = str(form.get("op", "preview"))
    original_id = str(form.get("original_id", ""))
    note = str(form.get("note", ""))[:1024]
    base_version = _version(form)
    current = await current_version(request)
    rules = current.rules if current is not None else None
    add = op[4:] if op.startswith("add:") else ""
    ev = await run_blocking(evaluate, rules, values, original_id, add)
    now = current.version if current is not None else 0
    if op != "save":
        if op == "kind" or add:  # a new set of fields: no problems shown for them yet
            ev.errors = {k: v for k, v in ev.errors.items() if k.startswith(("basket.", "member."))}
            ev.problems = []
        return _editor(
            request, ev, current, original_id=original_id, base_version=base_version, note=note
        )
    if now != base_version:
        ev.problems.insert(
            0,
            (
                "",
                f"Version {now} was published since this editor opened (version {base_version}). "
                "The preview now uses version "
                f"{now}: check it, then save again.",
            ),
        )
        return _editor(
            request,
            ev,
            current,
            original_id=original_id,
            base_version=now,
            note=note,
            status_code=409,
        )
    if not ev.ok:
        return _editor(
            request,
            ev,
            current,
            original_id=original_id,
            base_version=base_version,
            note=note,
            status_code=422,
        )
    try:
        reply: campaigns_pb2.PublishRuleSetResponse = await call(
            request,
            f"{SERVICE}/PublishRuleSet",
            campaigns_pb2.PublishRuleSetRequest(rules=ev.draft, note=note),
        )
    except RpcFailure as exc:
        # bad rules, or the guardrail gate's refusal (server.api.publish_gate): shown
        if exc.code not in (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.FAILED_PRECONDITION):
            raise
        names = input_names(F.kind_of(values), ev.rows)
        found = exc.violations or [("rules", exc.message)]
        ev.problems, ev.errors = placed(found, ev.index, ev.parsed, names)
        return _editor(
            request,
            ev,
            current,
            original_id=original_id,
            base_version=base_version,
            note=note,
            status_code=422,
        )
    return RedirectResponse(f"/offers?saved={ev.offer.id}&version={reply.version}", status_code=303)


def routes() -> list[Route]:
    return [
        Route("/offers", offers_page, methods=["GET"], name="offers"),
        Route("/offers/new", new_offer, methods=["GET"], name="offer-new"),
        Route("/offers/{offer_id}/edit", edit_offer, methods=["GET"], name="offer-edit"),
        Route("/offers/preview", preview, methods=["POST"], name="offer-preview"),
        Route("/offers/editor", editor, methods=["POST"], name="offer-editor"),
    ]
