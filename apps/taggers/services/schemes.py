"""Tagging schemes: definitions (a DAG of tagger steps, immutable JSON + sha256) validated on save
(docs/taggers.md#tagging-schemes). Runs are in `scheme_runs.py`, step execution in
`scheme_steps.py`, schedules in `schedules.py`.

A definition body is `{"steps": [step, …]}`; a step is

    {"key": "describe", "tagger": <id or name>, "version": "active" | <number>,
     "input": "image" | "regions:<step>" | "image_masked:<step>",
     "prompt": "Describe {character}. Context: {tags:picture}",   # captioners only
     "params": {…}, "after": ["<step>", …]}

Dependencies are the input's step, the `{tags:<step>}` placeholders and `after`. Every error is a
400 that names the step (`details.step`).
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from django.db import IntegrityError, transaction

from apps.core.exceptions import ConflictError, DomainError
from apps.core.ints import INT_MAX
from apps.taggers.engine.captioner import STEP_KEY, PromptError, placeholders
from apps.taggers.models import SchemeDefinition, SchemeRun, Tagger, TaggerVersion, TaggingScheme

MAX_STEPS = 50
ACTIVE = "active"
TAGGING_KINDS = (Tagger.Kind.WD_ONNX, Tagger.Kind.EMBEDDING_HEAD, Tagger.Kind.CLIP_ZEROSHOT)
# Which step kinds a scheme runs, and on which inputs (docs/taggers.md#tagging-schemes).
RUNNABLE: dict[str, tuple[str, ...]] = {
    Tagger.Kind.DETECTOR: ("image",),
    Tagger.Kind.WD_ONNX: ("image", "regions", "image_masked"),
    Tagger.Kind.CAPTIONER: ("image", "regions", "image_masked"),
    Tagger.Kind.EMBEDDING_HEAD: ("image",),  # stored vectors of whole items
    Tagger.Kind.CLIP_ZEROSHOT: ("image",),
}
STEP_FIELDS = {"key", "tagger", "version", "input", "prompt", "params", "after"}


class SchemeInvalid(DomainError):
    default_code = "taggers.scheme_invalid"
    default_message = "The scheme definition is not valid."


def _bad(step: str | None, message: str, field: str = "") -> SchemeInvalid:
    prefix = f"Step {step!r}: " if step else ""
    details = {"step": step or "", **({"field": field} if field else {})}
    return SchemeInvalid(prefix + message, details=details)


@dataclass(frozen=True)
class Step:
    """One validated step (what the runs use)."""

    key: str
    tagger_id: int
    kind: str
    version: str | int
    source: str  # image | regions | image_masked
    ref: str  # the detector step of regions:/image_masked:, else ""
    prompt: str
    params: dict[str, Any]
    after: tuple[str, ...]

    @property
    def input(self) -> str:
        return f"{self.source}:{self.ref}" if self.ref else self.source

    def deps(self) -> set[str]:
        tag_refs = {arg for name, arg in placeholders(self.prompt) if name == "tags" and arg}
        return ({self.ref} if self.ref else set()) | tag_refs | set(self.after)


def body_sha256(body: Mapping[str, Any]) -> str:
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def _tagger(step: str, ref: Any) -> Tagger:
    if isinstance(ref, bool) or not isinstance(ref, (int, str)) or ref == "" or len(str(ref)) > 64:
        raise _bad(step, "`tagger` must be a tagger id or name.", "tagger")
    if isinstance(ref, int) and not 1 <= ref <= INT_MAX:
        raise _bad(step, f"`tagger` ids run from 1 to {INT_MAX}.", "tagger")
    found = (
        Tagger.objects.filter(pk=ref).first()
        if isinstance(ref, int)
        else Tagger.objects.filter(name=ref).first()
    )
    if found is None:
        raise _bad(step, f"there is no tagger {ref!r}.", "tagger")
    return found


def _version(step: str, tagger: Tagger, raw: Any) -> str | int:
    if raw in (None, ACTIVE):
        return ACTIVE
    if isinstance(raw, bool) or not isinstance(raw, int) or not 1 <= raw <= INT_MAX:
        raise _bad(step, '`version` is "active" or a version number.', "version")
    status = TaggerVersion.objects.filter(tagger=tagger, number=raw).values_list("status", flat=True).first()
    if status != TaggerVersion.Status.READY:
        state = "does not exist" if status is None else f"is {status}"
        raise _bad(step, f"version {raw} of tagger {tagger.name!r} {state}; pin a ready version.", "version")
    return raw


# Known step params per kind and their checks (docs/taggers.md#tagging-schemes): each returns an
# error message or "". Other params pass to the backend as they are (finite numbers only).
MAX_PARAM_DEPTH = 8
MAX_BOXES = 100


def _unit(value: Any) -> str:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and 0.0 <= value <= 1.0
    return "" if ok else "must be a number from 0 to 1"


def _flag(value: Any) -> str:
    return "" if isinstance(value, bool) else "must be true or false"


def _int_in(low: int, high: int) -> Callable[[Any], str]:
    def check(value: Any) -> str:
        ok = isinstance(value, int) and not isinstance(value, bool) and low <= value <= high
        return "" if ok else f"must be a whole number from {low} to {high}"

    return check


def _text(limit: int) -> Callable[[Any], str]:
    def check(value: Any) -> str:
        return (
            ""
            if isinstance(value, str) and len(value) <= limit
            else f"must be text of at most {limit} characters"
        )

    return check


def _one_of(*choices: str) -> Callable[[Any], str]:
    def check(value: Any) -> str:
        return "" if value in choices else f"must be one of {', '.join(choices)}"

    return check


def _boxes(value: Any) -> str:
    wrong = (
        f"must be a list of at most {MAX_BOXES} boxes [x0, y0, x1, y1, label?] in fractions 0–1, "
        "x0 < x1, y0 < y1"
    )
    if not isinstance(value, list) or len(value) > MAX_BOXES:
        return wrong
    for box in value:
        if not isinstance(box, list) or len(box) not in (4, 5) or any(_unit(v) for v in box[:4]):
            return wrong
        if not (box[0] < box[2] and box[1] < box[3]) or (len(box) == 5 and _text(200)(box[4])):
            return wrong
    return ""


PARAM_CHECKS: dict[str, dict[str, Callable[[Any], str]]] = {
    Tagger.Kind.WD_ONNX: {
        "general_threshold": _unit,
        "character_threshold": _unit,
        "mcut_general": _flag,
        "mcut_character": _flag,
        "batch_size": _int_in(1, 256),
    },
    Tagger.Kind.DETECTOR: {"conf": _unit, "iou": _unit, "max_size": _int_in(32, 4096), "boxes": _boxes},
    Tagger.Kind.CAPTIONER: {"max_tokens": _int_in(1, 4096), "prefix": _text(1000)},
    Tagger.Kind.EMBEDDING_HEAD: {"threshold": _unit, "top_k": _int_in(1, 512)},
    Tagger.Kind.CLIP_ZEROSHOT: {
        "threshold": _unit,
        "top_k": _int_in(1, 512),
        "mcut": _flag,
        "scoring": _one_of("auto", "cosine", "sigmoid"),
    },
}


def _non_finite(value: Any, path: str, depth: int = 0) -> str:
    """The path of the first NaN or infinite number (JSON has neither; 1e999 parses to one), or
    of a nesting deeper than MAX_PARAM_DEPTH; "" when there is none."""
    if isinstance(value, float) and not math.isfinite(value):
        return path
    if depth > MAX_PARAM_DEPTH and isinstance(value, (dict, list)):
        return path
    if isinstance(value, dict):
        return next((p for k, v in value.items() if (p := _non_finite(v, f"{path}.{k}", depth + 1))), "")
    if isinstance(value, list):
        return next((p for i, v in enumerate(value) if (p := _non_finite(v, f"{path}[{i}]", depth + 1))), "")
    return ""


def _params(key: str, kind: str, params: Any) -> dict[str, Any]:
    if not isinstance(params, dict):
        raise _bad(key, "`params` must be an object.", "params")
    bad = _non_finite(params, "params")
    if bad:
        raise _bad(
            key,
            f"`{bad}` is not allowed: numbers must be finite (no NaN, Infinity or 1e999) and "
            f"params nest at most {MAX_PARAM_DEPTH} deep.",
            "params",
        )
    for name, check in PARAM_CHECKS.get(kind, {}).items():
        if name in params and (problem := check(params[name])):
            raise _bad(key, f"`params.{name}` {problem}.", "params")
    return params


def _check_space(key: str, tagger: Tagger) -> None:
    """Head and zero-shot steps score stored vectors: the tagger needs a space (with a text
    tower for zero-shot)."""
    if tagger.kind not in (Tagger.Kind.EMBEDDING_HEAD, Tagger.Kind.CLIP_ZEROSHOT):
        return
    space = tagger.embedding_space
    if space is None:
        raise _bad(key, f"tagger {tagger.name!r} has no embedding space to score.", "tagger")
    if tagger.kind == Tagger.Kind.CLIP_ZEROSHOT and not space.has_text_tower:
        raise _bad(key, f"space {space.name!r} of {tagger.name!r} has no text tower for zero-shot.", "tagger")


def _parse_step(raw: Any, position: int) -> tuple[Step, Tagger]:
    if not isinstance(raw, dict):
        raise _bad(None, f"step {position + 1} must be an object.")
    key = raw.get("key")
    if not isinstance(key, str) or not STEP_KEY.match(key):
        raise _bad(
            None, f"step {position + 1}: `key` must be 1–40 characters a–z, 0–9, _ starting with a letter."
        )
    unknown = sorted(set(raw) - STEP_FIELDS)
    if unknown:
        raise _bad(key, f"unknown field(s) {', '.join(unknown)}.", unknown[0])
    tagger = _tagger(key, raw.get("tagger"))
    source, _, ref = str(raw.get("input", "image")).partition(":")
    allowed = RUNNABLE.get(tagger.kind)
    if allowed is None:
        raise _bad(key, f"{tagger.get_kind_display()} taggers cannot run in a scheme yet.", "tagger")
    if source not in ("image", "regions", "image_masked") or (source == "image") != (ref == ""):
        raise _bad(key, '`input` is "image", "regions:<step>" or "image_masked:<step>".', "input")
    if source not in allowed:
        raise _bad(key, f"a {tagger.kind} step cannot take {source} input.", "input")
    _check_space(key, tagger)
    prompt = raw.get("prompt", "")
    if not isinstance(prompt, str) or len(prompt) > 4000:
        raise _bad(key, "`prompt` must be text of at most 4000 characters.", "prompt")
    if tagger.kind == Tagger.Kind.CAPTIONER and not prompt.strip():
        raise _bad(key, "a captioner step needs a `prompt`.", "prompt")
    if prompt and tagger.kind != Tagger.Kind.CAPTIONER:
        raise _bad(key, "only captioner steps take a `prompt`.", "prompt")
    try:
        placeholders(prompt)
    except PromptError as err:
        raise _bad(key, err.message, "prompt") from None
    params = _params(key, tagger.kind, raw.get("params", {}))
    after = raw.get("after", [])
    if not isinstance(after, list) or not all(isinstance(a, str) for a in after):
        raise _bad(key, "`after` must be a list of step keys.", "after")
    step = Step(
        key=key,
        tagger_id=tagger.pk,
        kind=tagger.kind,
        version=_version(key, tagger, raw.get("version", ACTIVE)),
        source=source,
        ref=ref,
        prompt=prompt,
        params=params,
        after=tuple(after),
    )
    return step, tagger


def _order(steps: dict[str, Step]) -> list[str]:
    """Steps in dependency order; SchemeInvalid naming a step on a cycle."""
    order: list[str] = []
    state: dict[str, int] = {}  # 1 visiting, 2 done

    def visit(key: str, path: list[str]) -> None:
        if state.get(key) == 2:
            return
        if state.get(key) == 1:
            cycle = [*path[path.index(key) :], key]
            raise _bad(key, f"the steps form a cycle ({' → '.join(cycle)}).", "after")
        state[key] = 1
        for dep in sorted(steps[key].deps()):
            visit(dep, [*path, key])
        state[key] = 2
        order.append(key)

    for key in steps:
        visit(key, [])
    return order


def ancestors(steps: Mapping[str, Step], key: str) -> set[str]:
    seen: set[str] = set()
    todo = list(steps[key].deps())
    while todo:
        dep = todo.pop()
        if dep not in seen:
            seen.add(dep)
            todo.extend(steps[dep].deps())
    return seen


def character_step(steps: Mapping[str, Step], key: str) -> str | None:
    """The ancestor that tags the same regions as `key` (where `{character}` comes from)."""
    step = steps[key]
    for other in sorted(ancestors(steps, key)):
        cand = steps[other]
        if cand.source == "regions" and cand.ref == step.ref and cand.kind in TAGGING_KINDS:
            return other
    return None


def _check_refs(steps: dict[str, Step]) -> None:
    for step in steps.values():
        for dep in sorted(step.deps()):
            if dep not in steps:
                raise _bad(step.key, f"it refers to step {dep!r}, which is not in the scheme.")
        if step.ref and steps[step.ref].kind != Tagger.Kind.DETECTOR:
            raise _bad(step.key, f"{step.input} must name a detector step; {step.ref!r} is not one.", "input")
        for name, arg in placeholders(step.prompt):
            if (
                name == "tags"
                and arg
                and (steps[arg].kind not in TAGGING_KINDS or steps[arg].source != "image")
            ):
                raise _bad(step.key, f"{{tags:{arg}}} must name a step that tags the whole image.", "prompt")


def _check_characters(steps: dict[str, Step]) -> None:
    for step in steps.values():
        if ("character", None) not in placeholders(step.prompt):
            continue
        if step.source != "regions":
            raise _bad(step.key, "{character} needs regions input (regions:<detector step>).", "prompt")
        if character_step(steps, step.key) is None:
            raise _bad(
                step.key,
                f"{{character}} names no ancestor: add a step tagging regions:{step.ref} and list it "
                "in `after`.",
                "prompt",
            )


def definition_validate(body: Any) -> tuple[dict[str, Any], list[Step]]:
    """The normalised body (tagger ids, explicit defaults) and its steps in dependency order."""
    if not isinstance(body, dict) or not isinstance(body.get("steps"), list) or not body["steps"]:
        raise _bad(None, 'The definition must be an object with a non-empty "steps" list.')
    if set(body) - {"steps"}:
        raise _bad(None, f"Unknown field(s) {', '.join(sorted(set(body) - {'steps'}))}.")
    if len(body["steps"]) > MAX_STEPS:
        raise _bad(None, f"A scheme has at most {MAX_STEPS} steps.")
    steps: dict[str, Step] = {}
    for position, raw in enumerate(body["steps"]):
        step, _ = _parse_step(raw, position)
        if step.key in steps:
            raise _bad(step.key, "the key is used by another step; keys must be unique.", "key")
        steps[step.key] = step
    _check_refs(steps)
    order = _order(steps)
    _check_characters(steps)
    normal = {
        "steps": [
            {
                "key": s.key,
                "tagger": s.tagger_id,
                "version": s.version,
                "input": s.input,
                **({"prompt": s.prompt} if s.prompt else {}),
                "params": s.params,
                "after": list(s.after),
            }
            for s in steps.values()
        ]
    }
    return normal, [steps[k] for k in order]


def definition_steps(definition: SchemeDefinition) -> dict[str, Step]:
    """The steps of a stored (already validated) definition, by key, in dependency order."""
    out: dict[str, Step] = {}
    raw_steps = {raw["key"]: raw for raw in definition.body["steps"]}
    kinds = dict(
        Tagger.objects.filter(pk__in=[r["tagger"] for r in raw_steps.values()]).values_list("pk", "kind")
    )
    for raw in raw_steps.values():
        source, _, ref = raw["input"].partition(":")
        out[raw["key"]] = Step(
            key=raw["key"],
            tagger_id=raw["tagger"],
            kind=kinds.get(raw["tagger"], ""),
            version=raw["version"],
            source=source,
            ref=ref,
            prompt=raw.get("prompt", ""),
            params=raw.get("params", {}),
            after=tuple(raw.get("after", [])),
        )
    return {k: out[k] for k in _order(out)}


def _definition_store(scheme: TaggingScheme, body: Any) -> SchemeDefinition:
    normal, _ = definition_validate(body)
    sha = body_sha256(normal)
    definition, _ = SchemeDefinition.objects.get_or_create(
        scheme=scheme, sha256=sha, defaults={"body": normal}
    )
    return definition


@transaction.atomic
def scheme_create(
    *, name: str, body: Any, description: str = "", scope: Any = None, actor: Any = None
) -> TaggingScheme:
    if TaggingScheme.objects.filter(name=name).exists():
        raise ConflictError(f"A scheme named {name!r} exists already.", code="taggers.scheme_exists")
    try:
        with transaction.atomic():
            scheme = TaggingScheme.objects.create(
                name=name,
                description=description,
                scope=scope or {},
                owner=actor if actor is not None and actor.is_authenticated else None,
            )
    except IntegrityError:
        raise ConflictError(
            f"A scheme named {name!r} exists already.", code="taggers.scheme_exists"
        ) from None
    scheme.current_definition = _definition_store(scheme, body)
    scheme.save(update_fields=["current_definition", "updated_at"])
    return scheme


@transaction.atomic
def scheme_update(
    *, scheme: TaggingScheme, body: Any = None, name: str | None = None, description: str | None = None
) -> TaggingScheme:
    """A new body becomes a new immutable definition (the same body finds its old one); runs keep
    the definition they started with."""
    scheme = TaggingScheme.objects.select_for_update().get(pk=scheme.pk)
    fields = ["updated_at"]
    if name is not None and name != scheme.name:
        if TaggingScheme.objects.filter(name=name).exclude(pk=scheme.pk).exists():
            raise ConflictError(f"A scheme named {name!r} exists already.", code="taggers.scheme_exists")
        scheme.name = name
        fields.append("name")
    if description is not None:
        scheme.description = description
        fields.append("description")
    if body is not None:
        scheme.current_definition = _definition_store(scheme, body)
        fields.append("current_definition")
    scheme.save(update_fields=fields)
    return scheme


@transaction.atomic
def scheme_delete(*, scheme: TaggingScheme) -> None:
    """Delete a scheme with its definitions, runs and schedules; refused while a run is active.
    Outputs (tag sets, regions, captions) stay: they belong to tagger versions, not schemes."""
    scheme = TaggingScheme.objects.select_for_update().get(pk=scheme.pk)
    if SchemeRun.objects.filter(scheme=scheme, status__in=SchemeRun.ACTIVE).exists():
        raise ConflictError(
            f"Scheme {scheme.name!r} has a run in progress; cancel it or wait before deleting.",
            code="taggers.scheme_running",
        )
    scheme.current_definition = None
    scheme.save(update_fields=["current_definition"])
    SchemeRun.objects.filter(scheme=scheme).delete()
    scheme.delete()
