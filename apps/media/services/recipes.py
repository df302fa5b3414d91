"""Transform recipes: validated, canonical JSON describing crop / scale / rotate / convert."""

from __future__ import annotations

import hashlib
import json
import re
from fractions import Fraction
from typing import Any

from apps.core.exceptions import DomainError

# SDXL's training buckets (≈1 MP, sides multiples of 64) and SD 1.5's (≈0.26 MP).
BUCKETS: dict[str, list[tuple[int, int]]] = {
    "sdxl": [
        (1024, 1024),
        (1152, 896),
        (896, 1152),
        (1216, 832),
        (832, 1216),
        (1344, 768),
        (768, 1344),
        (1536, 640),
        (640, 1536),
    ],
    "sd15": [(512, 512), (576, 448), (448, 576), (640, 384), (384, 640), (768, 320), (320, 768)],
}
ASPECTS = ["1:1", "2:3", "3:2", "3:4", "4:3", "9:16", "16:9", "4:5", "5:4"]
OUTPUT_FORMATS = {"jpg": "jpeg", "jpeg": "jpeg", "png": "png", "webp": "webp"}
MODES = {"RGB", "RGBA", "L", "LA"}
FILTERS = {"lanczos", "bicubic", "bilinear", "nearest", "box", "hamming"}
MAX_UPSCALE = 4.0
_COLOUR = re.compile(r"^#[0-9a-fA-F]{6}$")


class RecipeError(DomainError):
    default_code = "media.invalid_recipe"


def _num(
    value: Any,
    *,
    name: str,
    minimum: float | None = None,
    maximum: float | None = None,
    integer: bool = False,
) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise RecipeError(f"{name} must be a number.", details={"field": name})
    if integer and int(value) != value:
        raise RecipeError(f"{name} must be a whole number.", details={"field": name})
    if minimum is not None and value < minimum:
        raise RecipeError(f"{name} must be at least {minimum:g} ({value:g} given).", details={"field": name})
    if maximum is not None and value > maximum:
        raise RecipeError(f"{name} must be at most {maximum:g} ({value:g} given).", details={"field": name})
    return int(value) if integer else float(value)


def _aspect(value: Any) -> str:
    if isinstance(value, str) and value in BUCKETS:
        return value
    if isinstance(value, str) and re.fullmatch(r"\d{1,3}:\d{1,3}", value):
        w, h = (int(p) for p in value.split(":"))
        if w > 0 and h > 0:
            ratio = Fraction(w, h)
            return f"{ratio.numerator}:{ratio.denominator}"
    raise RecipeError(
        f"aspect must be like '16:9' or a bucket set ({', '.join(BUCKETS)}); got {value!r}.",
        details={"field": "aspect"},
    )


def _unknown(step: dict[str, Any], allowed: set[str], where: str) -> None:
    extra = set(step) - allowed
    if extra:
        raise RecipeError(
            f"{where}: unknown fields {', '.join(sorted(extra))}.", details={"fields": sorted(extra)}
        )


def _crop(step: dict[str, Any]) -> dict[str, Any]:
    _unknown(step, {"op", "box", "fbox", "aspect", "focus"}, "crop")
    chosen = [k for k in ("box", "fbox", "aspect") if k in step]
    if len(chosen) != 1:
        raise RecipeError("crop needs exactly one of box (pixels), fbox (fractions) or aspect.")
    out: dict[str, Any] = {"op": "crop"}
    if "box" in step:
        box = step["box"]
        if not isinstance(box, list) or len(box) != 4:
            raise RecipeError("crop box must be [x, y, width, height] in pixels.")
        x, y = (_num(v, name="box x/y", minimum=0, integer=True) for v in box[:2])
        w, h = (_num(v, name="box width/height", minimum=1, integer=True) for v in box[2:])
        out["box"] = [x, y, w, h]
    elif "fbox" in step:
        box = step["fbox"]
        if not isinstance(box, list) or len(box) != 4:
            raise RecipeError("crop fbox must be [x, y, width, height] as fractions of the image.")
        x, y = (_num(v, name="fbox x/y", minimum=0, maximum=1) for v in box[:2])
        w, h = (_num(v, name="fbox width/height", minimum=0.0001, maximum=1) for v in box[2:])
        if x + w > 1.0001 or y + h > 1.0001:
            raise RecipeError("crop fbox reaches outside the image (x + width and y + height must be ≤ 1).")
        out["fbox"] = [round(v, 6) for v in (x, y, w, h)]
    else:
        out["aspect"] = _aspect(step["aspect"])
        focus = step.get("focus", [0.5, 0.5])
        if not isinstance(focus, list) or len(focus) != 2:
            raise RecipeError("crop focus must be [x, y] as fractions (0.5, 0.5 is the centre).")
        out["focus"] = [round(_num(v, name="focus", minimum=0, maximum=1), 6) for v in focus]
    return out


def _scale(step: dict[str, Any]) -> dict[str, Any]:
    _unknown(
        step,
        {"op", "mode", "long", "short", "width", "height", "megapixels", "bucket", "upscale", "filter"},
        "scale",
    )
    targets = [k for k in ("long", "short", "width", "height", "megapixels", "bucket") if k in step]
    if not targets:
        raise RecipeError("scale needs a target: long, short, width and/or height, megapixels or bucket.")
    mode = step.get("mode", "fit")
    if mode not in ("fit", "fill", "exact"):
        raise RecipeError("scale mode must be fit, fill or exact.", details={"field": "mode"})
    out: dict[str, Any] = {
        "op": "scale",
        "mode": mode,
        "upscale": bool(step.get("upscale", False)),
        "filter": step.get("filter", "lanczos"),
    }
    if out["filter"] not in FILTERS:
        raise RecipeError(f"scale filter must be one of {', '.join(sorted(FILTERS))}.")
    if "bucket" in step:
        if step["bucket"] not in BUCKETS or len(targets) > 1:
            raise RecipeError(f"bucket must be one of {', '.join(BUCKETS)} and the only target.")
        out["bucket"] = step["bucket"]
    elif "megapixels" in step:
        if len(targets) > 1:
            raise RecipeError("megapixels must be the only scale target.")
        out["megapixels"] = _num(step["megapixels"], name="megapixels", minimum=0.01, maximum=100)
    elif "long" in step or "short" in step:
        if len(targets) > 1:
            raise RecipeError("long or short must be the only scale target.")
        key = "long" if "long" in step else "short"
        out[key] = _num(step[key], name=key, minimum=1, maximum=20000, integer=True)
    else:
        for key in ("width", "height"):
            if key in step:
                out[key] = _num(step[key], name=key, minimum=1, maximum=20000, integer=True)
        if mode in ("fill", "exact") and not ("width" in out and "height" in out):
            raise RecipeError(f"scale mode {mode} needs both width and height.")
    return out


def _rotate(step: dict[str, Any]) -> dict[str, Any]:
    _unknown(step, {"op", "degrees"}, "rotate")
    degrees = step.get("degrees")
    if degrees not in (90, 180, 270):
        raise RecipeError("rotate degrees must be 90, 180 or 270 (clockwise).")
    return {"op": "rotate", "degrees": degrees}


def _flip(step: dict[str, Any]) -> dict[str, Any]:
    _unknown(step, {"op", "axis"}, "flip")
    if step.get("axis") not in ("horizontal", "vertical"):
        raise RecipeError("flip axis must be horizontal or vertical.")
    return {"op": "flip", "axis": step["axis"]}


_OPS = {"crop": _crop, "scale": _scale, "rotate": _rotate, "flip": _flip}


def _output(raw: Any) -> dict[str, Any]:
    raw = raw or {}
    if not isinstance(raw, dict):
        raise RecipeError("output must be an object.")
    _unknown(raw, {"format", "quality", "mode", "alpha", "background", "bit_depth"}, "output")
    fmt = raw.get("format", "png")
    if fmt not in OUTPUT_FORMATS:
        raise RecipeError(
            f"Unknown output format {fmt!r}: use jpg, png or webp.",
            code="media.unknown_format",
            details={"field": "format"},
        )
    out: dict[str, Any] = {"format": OUTPUT_FORMATS[fmt]}
    if out["format"] in ("jpeg", "webp"):
        out["quality"] = _num(raw.get("quality", 95), name="quality", minimum=1, maximum=100, integer=True)
    alpha = raw.get("alpha", "keep")
    if alpha not in ("keep", "flatten", "refuse"):
        raise RecipeError("output alpha must be keep, flatten or refuse.")
    if out["format"] == "jpeg" and alpha == "keep":
        alpha = "flatten"  # JPEG has no alpha channel
    out["alpha"] = alpha
    background = raw.get("background", "#ffffff")
    if not isinstance(background, str) or not _COLOUR.match(background):
        raise RecipeError("output background must be a colour like #ffffff.")
    out["background"] = background.lower()
    if "mode" in raw:
        if raw["mode"] not in MODES:
            raise RecipeError(f"output mode must be one of {', '.join(sorted(MODES))}.")
        out["mode"] = raw["mode"]
    bit_depth = raw.get("bit_depth", 8)
    if bit_depth != 8:
        raise RecipeError("Only 8-bit output is supported.", details={"field": "bit_depth"})
    return out


def recipe_clean(raw: Any) -> dict[str, Any]:
    """Validate a recipe and return its canonical form (defaults filled, order kept)."""
    if not isinstance(raw, dict):
        raise RecipeError("The recipe must be an object with 'ops' and 'output'.")
    _unknown(raw, {"ops", "output", "frame"}, "recipe")
    ops = raw.get("ops", [])
    if not isinstance(ops, list) or len(ops) > 16:
        raise RecipeError("ops must be a list of at most 16 steps.")
    steps = []
    for index, step in enumerate(ops):
        if not isinstance(step, dict) or step.get("op") not in _OPS:
            raise RecipeError(
                f"ops[{index}] must be an object whose op is one of {', '.join(_OPS)}.",
                details={"index": index},
            )
        try:
            steps.append(_OPS[step["op"]](step))
        except RecipeError as err:
            raise RecipeError(
                f"ops[{index}] ({step['op']}): {err.message}",
                code=err.code,
                details={"index": index, **err.details},
            ) from err
    frame = int(_num(raw.get("frame", 0), name="frame", minimum=0, integer=True))
    return {"ops": steps, "output": _output(raw.get("output")), "frame": frame}


def recipe_hash(recipe: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(recipe, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def _step_label(step: dict[str, Any]) -> str:
    op = step["op"]
    if op == "crop":
        if "box" in step:
            x, y, w, h = step["box"]
            return f"crop {w}×{h} at {x},{y}"
        if "fbox" in step:
            return "crop " + "×".join(f"{v:.0%}" for v in step["fbox"][2:])
        return f"crop {step['aspect']}"
    if op == "scale":
        if "bucket" in step:
            return f"{step['bucket']} bucket"
        if "megapixels" in step:
            return f"{step['megapixels']:g} MP"
        if "long" in step:
            return f"{step['long']} px"
        if "short" in step:
            return f"short side {step['short']} px"
        size = "×".join(str(step[k]) for k in ("width", "height") if k in step)
        return f"{size} px" if step["mode"] == "fit" else f"{size} px {step['mode']}"
    if op == "rotate":
        return f"rotate {step['degrees']}°"
    return f"flip {step['axis']}"


def recipe_label(recipe: dict[str, Any]) -> str:
    """A clean recipe in a few words, for the name of its result: "crop 1:1, 512 px, webp"."""
    parts = [f"frame {recipe['frame']}"] if recipe.get("frame") else []
    parts += [_step_label(step) for step in recipe["ops"]]
    output = recipe["output"]
    parts.append({"jpeg": "jpg"}.get(output["format"], output["format"]))
    if "mode" in output:
        parts.append(output["mode"])
    return ", ".join(parts)
