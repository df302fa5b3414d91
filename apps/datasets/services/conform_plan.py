"""Conform's plan for one item (docs/datasets.md#conform): which image rules it fails and the
transform recipe that would make it pass them, with the result's size computed by the transform's
own arithmetic. Pure: reads nothing but its arguments."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from apps.core.exceptions import DomainError
from apps.datasets import buckets as bucketing
from apps.datasets.models import Requirements
from apps.media.models import MediaItem
from apps.media.services.recipes import MAX_UPSCALE, OUTPUT_FORMATS, recipe_clean, recipe_label
from apps.media.services.transforms import recipe_output_size

# Rules a recipe can fix; the others (file size, tags, near duplicates) are not conform's.
IMAGE_RULES = (
    "exact_width",
    "exact_height",
    "min_width",
    "max_width",
    "min_height",
    "max_height",
    "min_short_side",
    "min_aspect_milli",
    "max_aspect_milli",
    "min_pixels",
    "max_pixels",
    "formats",
    "modes",
    "bit_depth",
    "alpha",
)
FORMAT_PREFERENCE = ("png", "webp", "jpeg")  # lossless first
GREY_MODES = {"L", "I", "I;16", "I;16B", "I;16L", "F"}


class ConformError(DomainError):
    default_code = "datasets.cannot_conform"
    status_code = 422


@dataclass
class Options:
    """How to conform: to the size rules (`rules`) or to the nearest bucket of `base`."""

    target: str = "rules"
    base: int = 1024
    max_upscale: float = 1.0
    quality: int = 95
    focus: tuple[float, float] = (0.5, 0.5)

    def as_dict(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "base": self.base,
            "max_upscale": self.max_upscale,
            "quality": self.quality,
            "focus": list(self.focus),
        }


def _invalid(name: str, message: str) -> DomainError:
    return DomainError(f"{name}: {message}", code="datasets.invalid", details={"fields": {name: [message]}})


def options_clean(raw: dict[str, Any] | None) -> Options:
    """Options from an API body or query string; a 400 naming the field otherwise."""
    raw = raw or {}
    out = Options()
    target = raw.get("target", "rules") or "rules"
    if target not in ("rules", "bucket"):
        raise _invalid("target", "rules or bucket.")
    out.target = str(target)
    try:
        if raw.get("base") not in (None, ""):
            out.base = int(raw["base"])
        if raw.get("max_upscale") not in (None, ""):
            out.max_upscale = float(raw["max_upscale"])
        if raw.get("quality") not in (None, ""):
            out.quality = int(raw["quality"])
    except (TypeError, ValueError) as exc:
        raise _invalid("options", "base and quality are whole numbers, max_upscale a number.") from exc
    if out.base % bucketing.STEP or not bucketing.MIN_BASE <= out.base <= bucketing.MAX_BASE:
        raise _invalid(
            "base", f"a multiple of {bucketing.STEP} from {bucketing.MIN_BASE} to {bucketing.MAX_BASE}."
        )
    if not math.isfinite(out.max_upscale) or not 1.0 <= out.max_upscale <= MAX_UPSCALE:
        raise _invalid("max_upscale", f"from 1 (never enlarge) to {MAX_UPSCALE:g}.")
    if not 1 <= out.quality <= 100:
        raise _invalid("quality", "from 1 to 100.")
    focus = raw.get("focus")
    if focus not in (None, ""):
        if not isinstance(focus, (list, tuple)) or len(focus) != 2:
            raise _invalid("focus", "[x, y] as fractions of the image (0.5, 0.5 is the centre).")
        try:
            fx, fy = float(focus[0]), float(focus[1])
        except (TypeError, ValueError) as exc:
            raise _invalid("focus", "[x, y] as fractions of the image.") from exc
        if not (0 <= fx <= 1 and 0 <= fy <= 1):
            raise _invalid("focus", "each of x and y from 0 to 1.")
        out.focus = (fx, fy)
    return out


@dataclass
class Shape:
    """What the image rules look at: the stored metadata of an item or a planned result."""

    width: int
    height: int
    format: str
    mode: str
    bit_depth: int
    has_alpha: bool


def _shape(item: MediaItem) -> Shape:
    return Shape(item.width, item.height, item.format, item.mode, item.bit_depth, item.has_alpha)


def image_failures(req: Requirements, s: Shape) -> list[str]:
    """The image rules `s` fails, the same rules validation applies in SQL (selectors)."""
    ratio = round(1000 * s.width / s.height) if s.height else 0
    checks = [
        ("exact_width", req.exact_width is not None and s.width != req.exact_width),
        ("exact_height", req.exact_height is not None and s.height != req.exact_height),
        ("min_width", req.min_width is not None and s.width < req.min_width),
        ("max_width", req.max_width is not None and s.width > req.max_width),
        ("min_height", req.min_height is not None and s.height < req.min_height),
        ("max_height", req.max_height is not None and s.height > req.max_height),
        ("min_short_side", req.min_short_side is not None and min(s.width, s.height) < req.min_short_side),
        ("min_aspect_milli", req.min_aspect_milli is not None and ratio < req.min_aspect_milli),
        ("max_aspect_milli", req.max_aspect_milli is not None and ratio > req.max_aspect_milli),
        ("min_pixels", req.min_pixels is not None and s.width * s.height < req.min_pixels),
        ("max_pixels", req.max_pixels is not None and s.width * s.height > req.max_pixels),
        ("formats", bool(req.formats) and s.format not in req.formats),
        ("modes", bool(req.modes) and s.mode not in req.modes),
        ("bit_depth", req.bit_depth is not None and s.bit_depth != req.bit_depth),
        ("alpha", req.alpha == Requirements.Alpha.REQUIRED and not s.has_alpha),
        ("alpha", req.alpha == Requirements.Alpha.FORBIDDEN and s.has_alpha),
    ]
    return [code for code, fails in checks if fails]


def result_failures(req: Requirements, item: MediaItem) -> list[str]:
    """The image rules a stored result still fails (its probed metadata, not the plan)."""
    left = image_failures(req, _shape(item))
    if req.alpha == Requirements.Alpha.FLATTEN and item.has_alpha:
        left.append("alpha_flatten")
    return left


@dataclass
class Plan:
    """What conform would do with one item: a recipe and the result's shape, or a problem."""

    item: MediaItem
    fails: list[str]
    recipe: dict[str, Any] | None = None
    result: Shape | None = None
    problem: DomainError | None = None
    steps: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        item = self.item
        out: dict[str, Any] = {
            "id": item.pk,
            "name": item.name,
            "width": item.width,
            "height": item.height,
            "format": item.format,
            "mode": item.mode,
            "has_alpha": item.has_alpha,
            "fails": self.fails,
            "action": "conform" if self.problem is None else "cannot",
            "recipe": self.recipe,
            "steps": self.steps,
            "result": None,
            "problem": None,
        }
        if self.result is not None:
            r = self.result
            out["result"] = {
                "width": r.width,
                "height": r.height,
                "format": r.format,
                "mode": r.mode,
                "has_alpha": r.has_alpha,
            }
        if self.problem is not None:
            out["problem"] = {
                "code": self.problem.code,
                "message": self.problem.message,
                **self.problem.details,
            }
        return out


def _cannot(code: str, message: str, **details: Any) -> ConformError:
    return ConformError(message, code=code, details=details)


def _aspect_window(req: Requirements, opts: Options, width: int, height: int) -> tuple[float, float] | None:
    """The aspect (width ÷ height) the result must have, as a [low, high] window; None: any."""
    if opts.target == "bucket":
        chosen = bucketing.nearest_bucket(width, height, bucketing.buckets_for(opts.base))
        return chosen.aspect, chosen.aspect
    if req.exact_width and req.exact_height:
        return req.exact_width / req.exact_height, req.exact_width / req.exact_height
    low = req.min_aspect_milli / 1000 if req.min_aspect_milli else 0.0
    high = req.max_aspect_milli / 1000 if req.max_aspect_milli else math.inf
    return (low, high) if (low or high != math.inf) else None


def _crop(
    width: int, height: int, window: tuple[float, float] | None, focus: tuple[float, float]
) -> tuple[list[float] | None, float, float]:
    """A centred-on-focus crop (fractions of the image) into the aspect window, and its size."""
    aspect = width / height
    if window is None or window[0] - 0.0005 <= aspect <= window[1] + 0.0005:  # ratio_milli rounds
        return None, float(width), float(height)
    target = window[0] if aspect < window[0] else window[1]
    if aspect > target:  # too wide: keep the full height
        w, h = height * target, float(height)
    else:
        w, h = float(width), width / target
    fw, fh = w / width, h / height
    fx = min(max(focus[0] - fw / 2, 0.0), 1.0 - fw)
    fy = min(max(focus[1] - fh / 2, 0.0), 1.0 - fh)
    fbox = [round(fx, 6), round(fy, 6), round(fw, 6), round(fh, 6)]
    # The transform crops the recipe's rounded fractions, not w × h: size from those.
    return fbox, fbox[2] * width, fbox[3] * height


def _size(
    req: Requirements, opts: Options, w: float, h: float, bucket: tuple[int, int] | None
) -> tuple[int, int]:
    """The output size for a (cropped) w × h: inside every size rule, as little scaling as
    possible. Raises when the rules cannot all hold at this aspect."""
    if bucket is not None:
        return bucket
    if req.exact_width and req.exact_height:
        return req.exact_width, req.exact_height
    lower, upper = 0.0, math.inf
    for limit, side in ((req.min_width, w), (req.min_height, h), (req.min_short_side, min(w, h))):
        if limit:
            lower = max(lower, limit / side)
    for limit, side in ((req.max_width, w), (req.max_height, h)):
        if limit:
            upper = min(upper, limit / side)
    if req.exact_width:
        lower, upper = max(lower, req.exact_width / w), min(upper, req.exact_width / w)
    if req.exact_height:
        lower, upper = max(lower, req.exact_height / h), min(upper, req.exact_height / h)
    if req.min_pixels:
        lower = max(lower, math.sqrt(req.min_pixels / (w * h)))
    if req.max_pixels:
        upper = min(upper, math.sqrt(req.max_pixels / (w * h)))
    if lower > upper * (1 + 1e-6):
        raise _cannot(
            "datasets.rules_conflict",
            "No size at this aspect meets every size rule (a minimum needs more than a maximum allows).",
        )
    factor = 1.0 if lower <= 1.0 <= upper else (lower if lower > 1.0 else upper)
    if req.exact_width:
        out_w = req.exact_width
    else:
        out_w = math.ceil(w * factor - 1e-6) if factor > 1 else math.floor(w * factor + 1e-6)
    if req.exact_height:
        out_h = req.exact_height
    else:
        out_h = math.ceil(h * factor - 1e-6) if factor > 1 else math.floor(h * factor + 1e-6)
    return _aspect_fixup(req, max(1, out_w), max(1, out_h))


def _aspect_fixup(req: Requirements, out_w: int, out_h: int) -> tuple[int, int]:
    """Rounding the sides can move width ÷ height × 1000 just past an aspect bound: nudge the
    free side by a pixel or two (never an exact one)."""
    for _ in range(4):
        ratio = round(1000 * out_w / out_h)
        if req.min_aspect_milli and ratio < req.min_aspect_milli:
            out_w, out_h = (out_w, out_h - 1) if req.exact_width else (out_w + 1, out_h)
        elif req.max_aspect_milli and ratio > req.max_aspect_milli:
            out_w, out_h = (out_w - 1, out_h) if req.exact_height else (out_w, out_h + 1)
        else:
            break
    return out_w, out_h


def _format(req: Requirements, item: MediaItem, keep_alpha: bool) -> str:
    allowed = list(req.formats or [])
    produced = set(OUTPUT_FORMATS.values())
    keeps = not (keep_alpha and item.format == "jpeg")
    if item.format in produced and (not allowed or item.format in allowed) and keeps:
        return item.format
    choices = [f for f in FORMAT_PREFERENCE if not allowed or f in allowed]
    if keep_alpha:
        choices = [f for f in choices if f != "jpeg"]
    if not choices:
        raise _cannot(
            "datasets.format_unsupported",
            f"Conform writes png, webp or jpeg; the allowed formats ({', '.join(allowed)}) "
            + ("keep no alpha channel." if keep_alpha else "include none of them."),
        )
    return choices[0]


def _mode(req: Requirements, item: MediaItem, keep_alpha: bool, add_alpha: bool) -> str:
    grey = item.mode in GREY_MODES or item.mode == "LA"
    if keep_alpha or add_alpha:
        natural, choices = ("LA" if grey else "RGBA"), ["RGBA", "LA"]
    else:
        natural, choices = ("L" if item.mode in GREY_MODES else "RGB"), ["RGB", "L"]
    allowed = list(req.modes or [])
    if not allowed or natural in allowed:
        return natural
    for mode in choices:
        if mode in allowed:
            return mode
    raise _cannot(
        "datasets.mode_unsupported",
        f"Conform writes RGB, RGBA, L or LA; none of the allowed modes ({', '.join(allowed)}) fits "
        + ("an image with alpha." if keep_alpha or add_alpha else "an image without alpha."),
    )


def _alpha_allowed(req: Requirements) -> bool:
    modes_ok = not req.modes or bool({"RGBA", "LA"} & set(req.modes))
    formats_ok = not req.formats or bool({"png", "webp"} & set(req.formats))
    return modes_ok and formats_ok


def plan_item(*, item: MediaItem, req: Requirements, opts: Options) -> Plan:
    """What conform would do with `item` (pure: reads nothing but its arguments)."""
    plan = Plan(item=item, fails=image_failures(req, _shape(item)))
    if req.alpha == Requirements.Alpha.FLATTEN and item.has_alpha:
        plan.fails.append("alpha_flatten")
    try:
        if item.kind == MediaItem.Kind.VIDEO or not item.width or not item.height:
            raise _cannot("datasets.not_an_image", "A video: capture frames from it and conform those.")
        if req.bit_depth is not None and req.bit_depth != 8:
            raise _cannot(
                "datasets.bit_depth_unsupported",
                f"Conform writes 8 bits per channel; the requirement asks for {req.bit_depth}.",
            )
        bucket = None
        if opts.target == "bucket":
            chosen = bucketing.nearest_bucket(item.width, item.height, bucketing.buckets_for(opts.base))
            bucket = (chosen.width, chosen.height)
        fbox, cw, ch = _crop(
            item.width, item.height, _aspect_window(req, opts, item.width, item.height), opts.focus
        )
        out_w, out_h = _size(req, opts, cw, ch, bucket)
        factor = max(out_w / cw, out_h / ch)
        if factor > opts.max_upscale + 1e-6:
            raise _cannot(
                "datasets.needs_upscale",
                f"Needs a {factor:.2f}× upscale to {out_w}×{out_h}; "
                f"at most {opts.max_upscale:g}× is allowed.",
                factor=round(factor, 3),
                width=out_w,
                height=out_h,
            )
        alpha_rule = req.alpha
        keep_alpha = item.has_alpha and alpha_rule in (Requirements.Alpha.ANY, Requirements.Alpha.REQUIRED)
        if keep_alpha and alpha_rule == Requirements.Alpha.ANY and not _alpha_allowed(req):
            keep_alpha = False  # no allowed mode or format holds alpha, and no rule asks for it
        add_alpha = alpha_rule == Requirements.Alpha.REQUIRED and not item.has_alpha
        fmt = _format(req, item, keep_alpha or add_alpha)
        mode = _mode(req, item, keep_alpha, add_alpha)
        ops: list[dict[str, Any]] = []
        if fbox is not None:
            ops.append({"op": "crop", "fbox": fbox})
        # An exact scale whenever the crop alone would give another size than planned (the
        # transform rounds the cropped fractions of the image: a pixel off can cross a bound).
        if (out_w, out_h) != recipe_output_size(item.width, item.height, {"ops": ops}):
            ops.append(
                {
                    "op": "scale",
                    "mode": "exact",
                    "width": out_w,
                    "height": out_h,
                    "upscale": factor > 1 + 1e-9,
                }
            )
        output: dict[str, Any] = {
            "format": fmt,
            "alpha": "keep" if keep_alpha else "flatten",
            "background": (req.flatten_color or "#ffffff"),
            "mode": mode,
        }
        if fmt in ("jpeg", "webp"):
            output["quality"] = opts.quality
        plan.recipe = recipe_clean({"ops": ops, "output": output})
        out_w, out_h = recipe_output_size(item.width, item.height, plan.recipe)
        plan.result = Shape(out_w, out_h, fmt, mode, 8, "A" in mode)
        left = image_failures(req, plan.result)
        if left:
            raise _cannot(
                "datasets.rules_conflict",
                f"The result would still fail {', '.join(left)}.",
                rules=left,
            )
        plan.steps = recipe_label(plan.recipe).split(", ")
    except ConformError as err:
        plan.problem, plan.recipe, plan.result, plan.steps = err, None, None, []
    return plan
