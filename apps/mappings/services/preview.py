"""Preview a profile on a query or ids: sampled items with traces, and aggregates over the whole
target (docs/mappings.md#preview-and-apply). Above SYNC_MAX_ITEMS the aggregates are a job."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from apps.jobs import services as job_services
from apps.mappings.models import MappingProfile
from apps.mappings.pipeline import OutTag, Result, gc_paused, map_item, render, render_name
from apps.mappings.selectors import chunk_prepare
from apps.mappings.services.apply import CHUNK_ITEMS, SYNC_MAX_ITEMS, Prepared, prepare, results_for
from apps.tags.services.operations import operation_target_ids
from apps.tags.services.operations.plan import actor_or_none

PREVIEW_JOB = "mappings.preview"
PREVIEW_TASK = "mappings.preview_run"
SAMPLE_MAX = 200
TOP_UNMAPPED = 50
SHARES = ("mapped", "dropped", "unmapped")


def _name(prepared: Prepared, tag_id: int | None) -> str | None:
    info = prepared.compiled.tags.get(tag_id or 0)
    return None if tag_id is None or info is None else info.name


def _out(prepared: Prepared, out: OutTag) -> dict[str, Any]:
    trace = out.trace
    types = prepared.compiled.types
    info = prepared.compiled.tags.get(out.tag_id or 0)
    type_id = out.type_id if out.type_id is not None else (info.type_id if info else None)
    return {
        "tag_id": out.tag_id,
        "name": out.text if out.tag_id is None else _name(prepared, out.tag_id),
        "rendered": render_name(prepared.compiled, out),
        "type": types[type_id].key if type_id in types else None,
        "trace": {
            "via": trace.via,
            "inputs": [_name(prepared, t) for t in trace.inputs],
            "rule_id": trace.rule_id,
            "mapping_set": trace.set_slug or None,
            "aliased_from": _name(prepared, trace.aliased_from),
            "implied_by": _name(prepared, trace.implied_by),
        },
    }


def item_view(prepared: Prepared, item_id: int, inputs: list[int], result: Result) -> dict[str, Any]:
    """One sampled item as the API and pages show it."""
    return {
        "id": item_id,
        "input": [_name(prepared, t) for t in inputs],
        "output": [_out(prepared, t) for t in result.tags],
        "caption": result.caption,
        "flags": list(result.flags),
        "unmapped": [_name(prepared, t) for t in result.unmapped],
        "dropped": [_name(prepared, t) for t in result.dropped],
    }


def _sample(item_ids: Sequence[int], n: int) -> list[int]:
    """n ids spread evenly over the target (deterministic, so two previews agree)."""
    if n <= 0:
        return []
    if len(item_ids) <= n:
        return list(item_ids)
    step = len(item_ids) / n
    return [item_ids[int(k * step)] for k in range(n)]


def aggregate(
    prepared: Prepared, item_ids: Sequence[int], on_chunk: Any = None, keep: dict[int, Result] | None = None
) -> dict[str, Any]:
    """Shares mapped / dropped / unmapped over these items, flags and the top unmapped tags;
    the results of the items already in `keep` are stored there (the preview's sample)."""
    counts: Counter[str] = Counter()
    unmapped: Counter[int] = Counter()
    for start in range(0, len(item_ids), CHUNK_ITEMS):
        chunk = item_ids[start : start + CHUNK_ITEMS]
        with gc_paused():  # the chunk's inputs and results are freed before the collector resumes
            _count_chunk(prepared, chunk, counts, unmapped, keep)
        if on_chunk is not None:
            on_chunk(start + len(chunk))
    return _aggregates(prepared, len(item_ids), counts, unmapped)


def _count_chunk(
    prepared: Prepared,
    chunk: Sequence[int],
    counts: Counter[str],
    unmapped: Counter[int],
    keep: dict[int, Result] | None,
) -> None:
    """Map one chunk item by item and add its counts; no result outlives its item (bar the
    sample's), so nothing is left for the collector to scan (bench/README.md#mappings)."""
    compiled = prepared.compiled
    inputs = chunk_prepare(
        profile=prepared.profile,
        compiled=compiled,
        vocabulary_ids=prepared.vocabulary_ids,
        item_ids=chunk,
    )
    mapped = dropped = outputs = 0
    missed: list[int] = []
    flagged: dict[tuple[str, ...], int] = {}
    for item_id in chunk:
        result = map_item(compiled, inputs[item_id], caption=False)
        mapped += len(result.mapped)
        dropped += len(result.dropped)
        outputs += len(result.tags)
        if result.unmapped:
            missed += result.unmapped
        if result.flags:
            flagged[result.flags] = flagged.get(result.flags, 0) + 1
        if keep is not None and item_id in keep:
            keep[item_id] = replace(result, caption=render(compiled, result.tags))
    counts["mapped"] += mapped
    counts["dropped"] += dropped
    counts["unmapped"] += len(missed)
    counts["output_tags"] += outputs
    unmapped.update(missed)  # one counting pass in C per chunk
    for flags, n in flagged.items():
        for flag in flags:
            counts[f"flag_{flag}"] += n


def _aggregates(
    prepared: Prepared, items: int, counts: Counter[str], unmapped: Counter[int]
) -> dict[str, Any]:
    inputs = counts["mapped"] + counts["dropped"] + counts["unmapped"]
    return {
        "items": items,
        "input_tags": inputs,
        "output_tags": counts["output_tags"],
        "shares": {k: round(counts[k] / inputs, 4) if inputs else 0.0 for k in SHARES},
        "flags": {k[5:]: v for k, v in counts.items() if k.startswith("flag_")},
        "top_unmapped": [
            {"tag_id": tag_id, "name": _name(prepared, tag_id), "count": n}
            for tag_id, n in unmapped.most_common(TOP_UNMAPPED)
        ],
    }


def mapping_preview(
    *,
    profile: MappingProfile,
    q: str | None = None,
    ids: Sequence[Any] | None = None,
    sample: int = 50,
    actor: Any = None,
) -> dict[str, Any]:
    """Sampled items and (up to SYNC_MAX_ITEMS items) the aggregates; above, `aggregates` is
    None and `job` is the job computing them (its result holds them)."""
    prepared = prepare(profile)
    item_ids = operation_target_ids(q=q, ids=ids, viewer=actor_or_none(actor))
    picked = _sample(item_ids, max(0, min(int(sample), SAMPLE_MAX)))
    aggregates = None
    if len(item_ids) <= SYNC_MAX_ITEMS:  # one pass gives the sample's results too
        kept: dict[int, Result] = dict.fromkeys(picked)  # type: ignore[arg-type,assignment]
        aggregates = aggregate(prepared, item_ids, keep=kept)
        results = kept
    else:
        results = results_for(prepared, picked)
    inputs = {i: [] for i in picked}  # type: dict[int, list[int]]
    for item_id, result in results.items():
        traced = [t for o in result.tags for t in o.trace.inputs]
        inputs[item_id] = list(dict.fromkeys(result.mapped + result.dropped + result.unmapped + traced))
    out: dict[str, Any] = {
        "profile": profile.slug,
        "profile_version": prepared.profile_version,
        "items": len(item_ids),
        "sample": [item_view(prepared, i, inputs[i], results[i]) for i in picked],
        "aggregates": aggregates,
        "job": None,
    }
    if aggregates is None:
        out["job"] = job_services.job_start(
            kind=PREVIEW_JOB,
            task=PREVIEW_TASK,
            params={"profile": profile.pk, "q": q or "", "ids": [int(i) for i in ids or []]},
            created_by=actor_or_none(actor),
            total=len(item_ids),
            title=f"Preview mapping profile {profile.slug}",
        )
    return out


def mapping_preview_run(*, job_id: int) -> None:
    """Job body: the aggregates over a large target, with progress."""
    job = job_services.job_claim(job_id=job_id)
    if job is None:
        return
    try:
        profile = MappingProfile.objects.get(pk=int(job.params["profile"]))
        prepared = prepare(profile)
        item_ids = operation_target_ids(q=job.params.get("q") or None, ids=job.params.get("ids") or None)
        state = {"job": job}

        def progress(done: int) -> None:
            state["job"] = job_services.job_progress(job=state["job"], done=done)

        result = aggregate(prepared, item_ids, on_chunk=progress)
    except Exception as err:
        code = getattr(err, "code", "mappings.internal_error")
        job_services.job_fail(
            job=job, code=str(code), message=str(getattr(err, "message", "Preview failed."))
        )
        if not hasattr(err, "code"):
            raise
        return
    job_services.job_finish(job=state["job"], result=result)
