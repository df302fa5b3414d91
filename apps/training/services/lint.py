"""Export lint without writing images (docs/training.md#lint; §9 of the export formats).

Session-level checks read the plan's settings: L04, L07, L08, L15, L16, L17. Item checks walk
the plan's items once: L09 (source sizes) and L11 (prefix + suffix over the token budget; needs
the CLIP tokenizer in apps/training/logic/tokens.py). Rendered-line checks (L01-L03, L05, L13)
run where the bundle writer renders lines (apps/training/bundle/), so they block an export there.
A session with more items than `BAGGINTAG_TRAINING_SYNC_LINT_MAX` is linted as a job.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import Any

from apps.core.exceptions import DomainError
from apps.jobs import services as job_services
from apps.jobs.exceptions import JobSuperseded
from apps.jobs.models import Job
from apps.training import conf, upstream
from apps.training.bundle.kohya import script_for
from apps.training.logic import captions, tagger
from apps.training.logic import lint as rules
from apps.training.models import TrainingSession
from apps.training.plan import CaptionPolicy, Plan, PlanItem, Renderer
from apps.training.services.findings import as_json, capped, finding

logger = logging.getLogger(__name__)

LINT_JOB = "training.lint"
LINT_TASK = "training.lint"
FORBIDDEN_ARGS = ("caption_prefix", "caption_suffix")
DROPOUT_KEYS = ("caption_dropout_rate", "caption_tag_dropout_rate", "caption_dropout_every_n_epochs")


def text_randomness(plan: Plan) -> bool:
    """Anything that makes a caption differ between steps (shuffle, any dropout, alternates)."""
    policy = plan.caption_policy
    return bool(
        policy.shuffle
        or policy.caption_dropout_rate > 0
        or any(t.drop_rate > 0 or t.whole_drop_rate > 0 for t in policy.types.values())
        or len(policy.alternates) > 1
        or plan.method.train_text_encoder
    )


def buckets_findings(plan: Plan) -> list[dict[str, Any]]:
    """L08: the bucket settings against the family's step (apps/training/logic/lint.py)."""
    image = plan.image_policy
    found = rules.lint_buckets(
        plan.base_model.family, image.resolution, image.bucket_min, image.bucket_max, image.bucket_step
    )
    return [as_json(f) for f in found]


def kohya_args_findings(plan: Plan, extra_args: dict[str, Any]) -> list[dict[str, Any]]:
    """L04 (caption_prefix/suffix) and L17 (args unknown to the script, via upstream.KOHYA_ARGS)."""
    out = [
        finding("L04", "E", f"{key} wraps the whole caption file; remove it", f"extra_args.{key}")
        for key in FORBIDDEN_ARGS
        if key in extra_args
    ]
    if "kohya" not in plan.targets or not extra_args:
        return out
    script = script_for(plan.base_model.family, plan.method.kind)
    known = upstream.KOHYA_ARGS[script]
    # Keys another id reports: caption_prefix/suffix (L04), caption dropout in a TI set (L07).
    elsewhere = set(FORBIDDEN_ARGS) | (set(DROPOUT_KEYS) if plan.textual_inversion is not None else set())
    for key in sorted(extra_args):
        if key not in known and key not in elsewhere:
            out.append(finding("L17", "E", f"{script} has no argument {key!r}", f"extra_args.{key}"))
    return out


def settings_findings(plan: Plan, extra_args: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """Checks of the settings alone (no item is read)."""
    extra_args = extra_args or {}
    out = buckets_findings(plan)
    out += kohya_args_findings(plan, extra_args)
    method = plan.method
    if plan.textual_inversion is not None and (
        plan.caption_policy.caption_dropout_rate > 0 or any(k in extra_args for k in DROPOUT_KEYS)
    ):
        out.append(
            finding(
                "L07",
                "E",
                "TI scripts refuse caption-dropout keys; set caption dropout to 0",
                "caption_policy",
            )
        )
    if "kohya" in plan.targets:
        if method.cache_text_encoder_outputs and text_randomness(plan):
            out.append(
                finding(
                    "L15",
                    "E",
                    "kohya cannot cache text-encoder outputs while captions vary (shuffle, dropout, "
                    "alternates or a trained text encoder); turn one off",
                    "method.cache_text_encoder_outputs",
                )
            )
        image = plan.image_policy
        if method.cache_latents and (image.color_jitter or image.crop == "random"):
            out.append(
                finding(
                    "L15",
                    "E",
                    "latent caching cannot go with colour jitter or random crops",
                    "method.cache_latents",
                )
            )
        reg = any(d.role == "regularization" for d in plan.datasets)
        if method.masked_loss and reg:
            out.append(
                finding(
                    "L15", "E", "masked loss cannot go with regularisation datasets", "method.masked_loss"
                )
            )
        if method.masked_loss and plan.export.kohya_masks == "none":
            out.append(
                finding(
                    "L15",
                    "E",
                    "masked loss needs a mask for every subset: set kohya_masks to focus (white inside each "
                    "item's focus box) or turn masked loss off",
                    "method.masked_loss",
                )
            )
        if plan.export.kohya_masks == "focus" and reg:
            out.append(
                finding(
                    "L15",
                    "E",
                    "kohya loss masks make a ControlNet-style block, which has no regularisation subsets; "
                    "drop the masks or the regularisation datasets",
                    "export.kohya_masks",
                )
            )
    if "diffusers" in plan.targets and not plan.base_model.diffusers_ref:
        out.append(
            finding(
                "L16",
                "E",
                f"diffusers is targeted but {plan.base_model.profile} has no diffusers-format model "
                "(diffusers_ref); set one or drop the target",
                "base_model.diffusers_ref",
            )
        )
    return out


def renderers(plan: Plan) -> list[Renderer]:
    """The caption renderings the plan's targets read."""
    names: dict[str, Renderer]
    if plan.textual_inversion is not None:
        names = {"kohya": "ti_kohya", "onetrainer": "ti_onetrainer", "a1111": "ti_a1111"}
    else:
        names = {"kohya": "kohya", "onetrainer": "neutral", "diffusers": "diffusers"}
    return [names[t] for t in plan.targets if t in names]


def item_findings(plan: Plan, item: PlanItem, policy: CaptionPolicy) -> Iterator[dict[str, Any]]:
    """One item: L08 (no kohya bucket), L09 (source size, aspect, crop loss, upscaling), L05 (tag
    texts), L11 (fixed part over the budget) and the rendered-line checks (L01-L03)."""
    image = plan.image_policy
    fit = None
    found: list[Any] = []
    if item.width > 0 and item.height > 0:
        # Every bundle records kohya's bucket (items.jsonl), so an image kohya cannot bucket (L08)
        # is an error whichever trainers are targeted; L09 reads the fit for kohya only.
        kohya_fit, found = rules.kohya_fit(item.width, item.height, image, item=item.id)
        fit = kohya_fit if "kohya" in plan.targets else None
    found += rules.lint_image(item.width, item.height, fit, image, item=item.id)
    found += rules.lint_caption(item.caption)
    token = plan.textual_inversion.token if plan.textual_inversion is not None else ""
    wanted = renderers(plan)
    found += rules.lint_budget(item.caption, policy, wanted, token=token)  # TI renderings count the token
    for renderer in wanted:
        rendered = captions.render(item.caption, policy, renderer, seed=plan.seed, token=token)
        marked = captions.kohya_marked(policy, renderer) if "kohya" in renderer else None
        found += rules.lint_lines(rendered.lines, renderer, marked=marked, item=item.id)
    for row in found:
        yield as_json(row)


def plan_lint(
    plan: Plan, *, extra_args: dict[str, Any] | None = None, progress: Callable[[int], None] | None = None
) -> list[dict[str, Any]]:
    """Every check this module makes, over the settings and each item once (streamed)."""
    from apps.training.services.plan_values import policy_for

    out = settings_findings(plan, extra_args)
    policies = {d.id: policy_for(plan.caption_policy, d.overrides) for d in plan.datasets}
    labels = _TaggerLabels(plan)
    for n, item in enumerate(plan.items(), 1):
        out.extend(item_findings(plan, item, policies.get(item.dataset, plan.caption_policy)))
        out.extend(labels.add(item))
        if progress is not None and n % 500 == 0:
            progress(n)
    if plan.item_count == 0:
        out.append(finding("", "E", "the session has no images to export"))
    out.extend(labels.finish())
    return out


class _TaggerLabels:
    """The wd-tagger target's label checks: L01 per training image without labels, L18 per label
    on too few images (counted once per picture, as `wd-tagger/images/` holds it)."""

    def __init__(self, plan: Plan) -> None:
        self.on = "wd-tagger" in plan.targets
        self.train = {p.id for p in plan.partitions if p.role == "train"}
        self.seen: set[str] = set()
        self.counts: dict[tuple[str, int], int] = {}

    def add(self, item: PlanItem) -> list[dict[str, Any]]:
        if not self.on or item.partition not in self.train:
            return []
        found = tagger.labels(item.caption)
        if item.id not in self.seen:
            self.seen.add(item.id)
            for key in found:
                self.counts[key] = self.counts.get(key, 0) + 1
        return [as_json(f) for f in tagger.lint_labels(found, item=item.id)]

    def finish(self) -> list[dict[str, Any]]:
        if not self.on or not self.seen:
            return []
        return [as_json(f) for f in tagger.lint_counts(tagger.selected_rows(self.counts))]


def _extra_args(session: TrainingSession) -> dict[str, Any]:
    return dict(session.extra_args or {})


def session_lint(session: TrainingSession, *, actor: Any = None) -> dict[str, Any]:
    """Lint the latest version against the live members: findings in the request for sessions
    up to BAGGINTAG_TRAINING_SYNC_LINT_MAX items, else a job (the answer names it)."""
    from apps.training.services.plan import plan_build

    # reads at most sync_lint_max() items per dataset; bigger sessions are linted by a job
    plan = plan_build(session, freeze=False, actor=actor, limit=conf.sync_lint_max())
    if plan.sampled or plan.item_count > conf.sync_lint_max():
        job = job_services.job_start(
            kind=LINT_JOB,
            task=LINT_TASK,
            params={"session": session.pk, "subject": {"label": f"training session {session.name}"}},
            created_by=actor,
            total=plan.item_count,
            title=f"Lint {session.name}",
        )
        return {"job": job, "findings": None}
    rows, total = capped(plan_lint(plan, extra_args=_extra_args(session)), conf.findings_max())
    return {
        "job": None,
        "findings": rows,
        "total": total,
        "item_count": plan.item_count,
        "version": plan.session_version,
    }


def _progress(job: Job, done: int) -> None:
    job_services.job_progress(job=job, done=done)


def lint_run(*, job_id: int) -> None:
    """Job body: lint a big session; findings go to the job's result."""
    from apps.training.services.plan import plan_build

    job = job_services.job_claim(job_id=job_id)
    if job is None:
        return
    session = TrainingSession.objects.filter(pk=job.params.get("session")).first()
    if session is None:
        job_services.job_fail(job=job, code="training.not_found", message="The training session was deleted.")
        return
    try:
        plan = plan_build(session, freeze=False)
        job_services.job_progress(job=job, total=plan.item_count)
        found = plan_lint(
            plan,
            extra_args=_extra_args(session),
            progress=lambda n: _progress(job, n),
        )
        rows, total = capped(found, conf.findings_max())
    except JobSuperseded:
        raise
    except DomainError as exc:
        job_services.job_fail(job=job, code=exc.code, message=exc.message)
        return
    job_services.job_progress(job=job, done=plan.item_count)
    job_services.job_finish(
        job=job,
        result={"session": session.pk, "version": plan.session_version, "findings": rows, "total": total},
    )
