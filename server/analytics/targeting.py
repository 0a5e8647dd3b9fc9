"""A targeting run against a store: segment tags on members, coupons into wallets.

``run_targeting`` computes segments and the issue plan with the engine (pure polars), reads
consent from the store, writes segment tags to members who allow automated decisions and puts
the planned coupons into wallets. Idempotent per run id: each (run, campaign, member) has one
coupon id, so a re-run with the same run id issues nothing twice.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime

import polars as pl

from engine.analytics import playbook as pb
from engine.analytics import targeting
from engine.analytics.history import conform, last_day
from engine.errors import AlreadyExists
from server.store.base import MemberRecord, Store

log = logging.getLogger(__name__)

Progress = Callable[[str, int, int], None]


@dataclass(frozen=True)
class RunResult:
    run_id: str
    as_of: datetime
    profiles: pl.DataFrame  # engine.analytics.targeting.category_profiles
    values: pl.DataFrame  # engine.analytics.targeting.member_values
    plan: pl.DataFrame  # engine.analytics.playbook.plan, ``status`` updated with what was issued
    summary: pl.DataFrame  # engine.analytics.playbook.summary
    tagged: int  # members whose segment tags were written
    conflicts: int  # members who already had another coupon of this run and campaign


def read_consent(
    store: Store,
    member_ids: list[str],
    now: datetime,
    progress: Progress | None = None,
    batch: int = 1000,
) -> tuple[pl.DataFrame, dict[str, MemberRecord]]:
    """Consent flags (a frame) and the records of the members the store knows."""
    records: dict[str, MemberRecord] = {}
    for start in range(0, len(member_ids), batch):
        records.update(store.get_members(member_ids[start : start + batch], now))
        if progress:
            progress("members read", min(start + batch, len(member_ids)), len(member_ids))
    rows = [
        (m, r.consent.marketing, r.consent.automated_decisions, r.consent.third_party)
        for m, r in records.items()
    ]
    frame = pl.DataFrame(
        rows,
        schema={
            "member_id": pl.String,
            "marketing": pl.Boolean,
            "automated_decisions": pl.Boolean,
            "third_party": pl.Boolean,
        },
        orient="row",
    )
    return frame, records


def write_tags(
    store: Store,
    tags: pl.DataFrame,
    consent: pl.DataFrame,
    records: dict[str, MemberRecord],
    now: datetime,
    progress: Progress | None = None,
    batch: int = 1000,
) -> int:
    """Replace each consenting member's targeting tags; other tags stay. Returns members tagged.

    Members who opted out of automated decisions are not profiled: their earlier targeting
    tags are removed and no new ones are written. Each member's change is atomic in the store
    and keeps whatever else changed in the profile meanwhile.
    """
    allowed = set(consent.filter(pl.col("automated_decisions"))["member_id"].to_list())
    by_member = dict(tags.select("member_id", "tags").iter_rows())
    changes: dict[str, tuple[set[str], set[str]]] = {}
    for m, record in records.items():
        targeting_tags = {s for s in record.segments if targeting.is_targeting_tag(s)}
        new = set(by_member.get(m) or ()) if m in allowed else set()
        if new != targeting_tags:
            changes[m] = (new - targeting_tags, targeting_tags - new)
    items = list(changes.items())
    for start in range(0, len(items), batch):
        store.update_segments(dict(items[start : start + batch]), now)
        if progress:
            progress("tags", min(start + batch, len(items)), len(items))
    return sum(1 for m in records if m in allowed)


def issue(
    store: Store,
    run_id: str,
    planned: pl.DataFrame,
    now: datetime,
    progress: Progress | None = None,
    personalised: Mapping[str, bool] | None = None,
) -> tuple[pl.DataFrame, int]:
    """Issue every ``status == "issue"`` row; one issue id per (run, campaign).

    Returns the plan with ``status`` ``issued`` (or ``conflict`` for members who already hold
    a different coupon of this run and campaign, ``no_consent`` for members who withdrew
    consent since it was read) and the number of conflicts. ``personalised`` maps campaign
    id to the playbook's ``personalised`` (missing: True); a personalised campaign's coupons
    are issued as personalised: the store skips members without marketing and
    automated-decisions consent, and withdrawing either later revokes them
    (``Store.upsert_member``).
    """
    todo = planned.filter(pl.col("status") == "issue")
    groups = todo.group_by(
        "campaign_id", "offer_id", "uses", "valid_from", "valid_until", maintain_order=True
    ).agg("member_id")
    conflicts: list[tuple[str, str]] = []
    no_consent: list[tuple[str, str]] = []
    done = 0
    for campaign, offer, uses, start, until, members in groups.iter_rows():
        issue_id = f"{run_id}:{campaign}"
        flag = (personalised or {}).get(campaign, True)
        try:
            out = store.issue_coupons(
                issue_id, offer, members, uses, start, until, now, personalised=flag
            )
            no_consent += [(campaign, m) for m in out.skipped]
        except AlreadyExists:  # some member got another coupon under this id: one at a time
            for m in members:
                try:
                    out = store.issue_coupons(
                        issue_id, offer, [m], uses, start, until, now, personalised=flag
                    )
                    no_consent += [(campaign, m) for m in out.skipped]
                except AlreadyExists:
                    conflicts.append((campaign, m))
        done += len(members)
        if progress:
            progress("coupons", done, len(todo))
    bad = pl.DataFrame(
        [(c, m, "conflict") for c, m in conflicts] + [(c, m, "no_consent") for c, m in no_consent],
        schema={"campaign_id": pl.String, "member_id": pl.String, "_conflict": pl.String},
        orient="row",
    )
    plan = (
        planned.join(bad, on=["campaign_id", "member_id"], how="left")
        .with_columns(
            pl.when(pl.col("_conflict").is_not_null())
            .then(pl.col("_conflict"))
            .when(pl.col("status") == "issue")
            .then(pl.lit("issued"))
            .otherwise(pl.col("status"))
            .alias("status")
        )
        .drop("_conflict")
    )
    return plan, len(conflicts)


def run_targeting(
    store: Store,
    history: pl.DataFrame | pl.LazyFrame,
    playbook: pb.Playbook,
    run_id: str,
    now: datetime,
    *,
    as_of: datetime | None = None,
    progress: Progress | None = None,
    dry_run: bool = False,
    profiled: tuple[pl.DataFrame, pl.DataFrame] | None = None,
) -> RunResult:
    """Segments, tags and coupons for every member of ``history`` the store knows.

    ``profiled``: the history's ``(category_profiles, member_values)`` as of ``as_of`` when
    already computed (on Dask: :func:`server.analytics.dask_replay.profile_on`)."""
    lf = conform(history)
    as_of = as_of or last_day(lf)
    cfg = playbook.targeting
    if profiled is not None:
        profiles, values = profiled
    else:
        profiles = targeting.category_profiles(lf, cfg, as_of)
        values = targeting.member_values(lf, cfg, as_of)
    consent, records = read_consent(store, values["member_id"].to_list(), now, progress)
    planned = pb.plan(playbook, profiles, values, consent, as_of, history=lf)
    tagged = conflicts = 0
    if not dry_run:
        tagged = write_tags(
            store, targeting.member_tags(profiles, values), consent, records, now, progress
        )
        flags = {c.id: c.personalised for c in playbook.campaigns}
        flags |= {b.id: b.personalised for b in playbook.bundles}
        planned, conflicts = issue(store, run_id, planned, now, progress, flags)
    log.info(
        "targeting run %s: %d plan rows, %d tagged, %d conflicts",
        run_id,
        len(planned),
        tagged,
        conflicts,
    )
    summary = pb.summary(planned.with_columns(pl.col("status").replace("issued", "issue")))
    return RunResult(run_id, as_of, profiles, values, planned, summary, tagged, conflicts)
