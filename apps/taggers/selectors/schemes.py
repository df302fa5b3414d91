"""Reads for tagging schemes, their runs and schedules (docs/taggers.md#tagging-schemes)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db.models import Prefetch, QuerySet

from apps.core.exceptions import NotFoundError
from apps.taggers.engine.captioner import placeholders
from apps.taggers.models import SchemeRun, SchemeSchedule, StepRun, Tagger, TaggingScheme


def scheme_list() -> QuerySet[TaggingScheme]:
    return TaggingScheme.objects.select_related("current_definition").order_by("pk")


def scheme_get(*, ref: Any) -> TaggingScheme:
    found = (
        scheme_list().filter(pk=ref).first() if str(ref).isdigit() else scheme_list().filter(name=ref).first()
    )
    if found is None:
        raise NotFoundError(f"No tagging scheme {ref!r}.", code="taggers.scheme_not_found")
    return found


def run_list(*, scheme: TaggingScheme | None = None) -> QuerySet[SchemeRun]:
    """Runs newest first, with their definition and steps (version and job) loaded."""
    steps = Prefetch(
        "steps", queryset=StepRun.objects.select_related("resolved_version", "job").order_by("pk")
    )
    runs = (
        SchemeRun.objects.select_related("scheme", "job", "definition")
        .prefetch_related(steps)
        .order_by("-pk")
    )
    return runs.filter(scheme=scheme) if scheme is not None else runs


def run_get(*, pk: Any) -> SchemeRun:
    found = run_list().filter(pk=pk).first()
    if found is None:
        raise NotFoundError(f"No scheme run {pk}.", code="taggers.run_not_found")
    return found


def run_steps(*, run: SchemeRun) -> list[StepRun]:
    return list(StepRun.objects.filter(run=run).select_related("resolved_version", "job").order_by("pk"))


def schedule_list(*, scheme: TaggingScheme | None = None) -> QuerySet[SchemeSchedule]:
    rows = SchemeSchedule.objects.select_related("scheme", "crontab", "last_run").order_by("pk")
    return rows.filter(scheme=scheme) if scheme is not None else rows


def schedule_get(*, pk: Any) -> SchemeSchedule:
    found = schedule_list().filter(pk=pk).first()
    if found is None:
        raise NotFoundError(f"No scheme schedule {pk}.", code="taggers.schedule_not_found")
    return found


def crontab_text(schedule: SchemeSchedule) -> str:
    c = schedule.crontab
    return f"{c.minute} {c.hour} {c.day_of_week} {c.day_of_month} {c.month_of_year}"


@dataclass(frozen=True)
class DagNode:
    key: str
    tagger: str
    kind: str
    version: str
    input: str
    prompt: str
    deps: list[str]
    layer: int
    x: int
    y: int


@dataclass(frozen=True)
class Dag:
    nodes: list[DagNode]
    edges: list[tuple[DagNode, DagNode]]
    width: int
    height: int


NODE_W, NODE_H, GAP_X, GAP_Y = 180, 56, 60, 24


def scheme_dag(*, scheme: TaggingScheme) -> Dag:
    """The current definition laid out in layers (a step one layer right of its deepest
    dependency), for the editor's server-rendered SVG."""
    if scheme.current_definition is None:
        return Dag([], [], 0, 0)
    raw = scheme.current_definition.body["steps"]
    names = dict(Tagger.objects.filter(pk__in=[s["tagger"] for s in raw]).values_list("pk", "name"))
    kinds = dict(Tagger.objects.filter(pk__in=[s["tagger"] for s in raw]).values_list("pk", "kind"))
    deps: dict[str, list[str]] = {}
    for s in raw:
        ref = s["input"].partition(":")[2]

        tags = [arg for name, arg in placeholders(s.get("prompt", "")) if name == "tags" and arg]
        deps[s["key"]] = sorted({*([ref] if ref else []), *tags, *s.get("after", [])})
    layer: dict[str, int] = {}

    def depth(key: str) -> int:
        if key not in layer:
            layer[key] = 1 + max((depth(d) for d in deps[key]), default=-1)
        return layer[key]

    rows: dict[int, int] = {}
    nodes: dict[str, DagNode] = {}
    for s in raw:
        d = depth(s["key"])
        row = rows.get(d, 0)
        rows[d] = row + 1
        nodes[s["key"]] = DagNode(
            key=s["key"],
            tagger=names.get(s["tagger"], f"#{s['tagger']}"),
            kind=kinds.get(s["tagger"], "?"),
            version=str(s["version"]),
            input=s["input"],
            prompt=s.get("prompt", ""),
            deps=deps[s["key"]],
            layer=d,
            x=10 + d * (NODE_W + GAP_X),
            y=10 + row * (NODE_H + GAP_Y),
        )
    edges = [(nodes[d], n) for n in nodes.values() for d in n.deps if d in nodes]
    width = 20 + (max(layer.values(), default=0) + 1) * (NODE_W + GAP_X)
    height = 20 + max(rows.values(), default=0) * (NODE_H + GAP_Y)
    return Dag(list(nodes.values()), edges, width, height)
