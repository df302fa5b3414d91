"""Caption preview (docs/training.md#preview): a few items of a session with the captions each
renderer would write, from the live members, without writing anything."""

from __future__ import annotations

import itertools
from typing import Any

from apps.training.logic import captions
from apps.training.models import TrainingSession
from apps.training.plan import Plan, PlanItem, Renderer
from apps.training.services import lint
from apps.training.services.plan_values import policy_for

MAX_ITEMS = 50


def _render(plan: Plan, item: PlanItem, renderer: Renderer) -> dict[str, Any]:
    """One renderer's lines for the item, through apps/training/logic/captions.render."""
    entry = next((d for d in plan.datasets if d.id == item.dataset), None)
    policy = policy_for(plan.caption_policy, entry.overrides if entry is not None else {})
    token = plan.textual_inversion.token if plan.textual_inversion is not None else ""
    rendered = captions.render(item.caption, policy, renderer, seed=plan.seed, token=token)
    return {
        "lines": list(rendered.lines),
        "keep": rendered.keep,
        "materialized": rendered.materialized,
        "trimmed": rendered.trimmed,
    }


def item_preview(plan: Plan, item: PlanItem, renderers: list[Renderer]) -> dict[str, Any]:
    lines = {renderer: _render(plan, item, renderer) for renderer in renderers}
    return {
        "id": item.id,
        "media_id": item.lineage.media_id,
        "dataset": item.dataset,
        "partition": item.partition,
        "width": item.width,
        "height": item.height,
        "repeats": item.repeats,
        "mirror_of": item.mirror_of,
        "tags": [{"text": e.text, "type": e.type} for e in item.caption.entries],
        "descriptions": {k: list(v) for k, v in item.caption.descriptions.items()},
        "captions": lines,
    }


def session_preview(session: TrainingSession, n: int = 8, *, actor: Any = None) -> dict[str, Any]:
    """The first `n` items in bundle order (≤ MAX_ITEMS) with their captions per renderer."""
    from apps.training.services.plan import plan_build

    n = max(1, min(n, MAX_ITEMS))
    plan = plan_build(session, freeze=False, actor=actor, limit=n)  # reads n items per dataset
    renderers = lint.renderers(plan)
    items = [item_preview(plan, item, renderers) for item in itertools.islice(plan.items(), n)]
    return {
        "session": session.pk,
        "version": plan.session_version,
        "item_count": plan.item_count,
        "partitions": [
            {
                "id": p.id,
                "dataset": p.dataset,
                "role": p.role,
                "repeats": p.repeats,
                "item_count": p.item_count,
            }
            for p in plan.partitions
        ],
        "renderers": renderers,
        "items": items,
        "notes": plan.notes,
    }
