"""Minimal private stand-ins for apps.training.logic (rand, buckets, captions, lint) so the
bundle tests run before the real modules land; `logic()` prefers each real module."""

from __future__ import annotations

import hashlib
import importlib
import math
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

from apps.training.plan import CaptionPolicy, ItemCaption, Rendered


class rand:
    @staticmethod
    def u(*parts: object) -> float:
        text = "\x1f".join(["baggintag/1", *(str(p) for p in parts)])
        return (int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big") >> 11) / 2**53

    @staticmethod
    def concept_seed(seed: int, partition: str) -> int:
        return math.floor(rand.u(seed, "concept", partition) * 2**30)


@dataclass(frozen=True)
class BucketFit:
    bucket: tuple[int, int]
    resized: tuple[int, int]
    crop_loss: float
    upscale: bool


class buckets:
    @staticmethod
    def _kohya_list(resolution: int, min_: int, max_: int, step: int) -> list[tuple[int, int]]:
        area = resolution * resolution
        side = int(math.sqrt(area) // step * step)
        sizes = {(side, side)}
        for w in range(min_, max_ + 1, step):
            h = min(max_, area // w // step * step)
            if h >= min_:
                sizes |= {(w, h), (h, w)}
        return sorted(sizes)

    @staticmethod
    def kohya_predict(
        w: int, h: int, *, resolution: int, min_: int, max_: int, step: int, no_upscale: bool = False
    ) -> BucketFit:
        options = buckets._kohya_list(resolution, min_, max_, step)
        bucket = (w, h) if (w, h) in options else min(options, key=lambda b: abs(b[0] / b[1] - w / h))
        s = bucket[1] / h if w / h > bucket[0] / bucket[1] else bucket[0] / w
        resized = (math.floor(w * s + 0.5), math.floor(h * s + 0.5))
        return BucketFit(bucket, resized, 1 - bucket[0] * bucket[1] / (resized[0] * resized[1]), s > 1)

    @staticmethod
    def onetrainer_predict(w: int, h: int, *, resolution: int, quantum: int) -> BucketFit:
        sizes = set()
        for a in (1, 1.25, 1.5, 1.75, 2, 2.5, 3, 3.5, 4):
            bw, bh = (
                round(resolution * math.sqrt(a) / quantum) * quantum,
                round(resolution / math.sqrt(a) / quantum) * quantum,
            )
            sizes |= {(bw, bh), (bh, bw)}
        bucket = min(sorted(sizes), key=lambda b: abs(b[1] / b[0] - h / w))
        s = max(bucket[0] / w, bucket[1] / h)
        resized = (round(w * s), round(h * s))
        return BucketFit(bucket, resized, 1 - bucket[0] * bucket[1] / (resized[0] * resized[1]), s > 1)


class captions:
    """Plain renderings: prefix/flex/suffix joined ", " (kohya: marked form with |||)."""

    @staticmethod
    def _zones(item: ItemCaption, policy: CaptionPolicy) -> tuple[list[str], list[str], list[str]]:
        zones: dict[str, list[str]] = {"prefix": [], "flex": [], "suffix": []}
        for entry in item.entries:
            zone = policy.types.get(entry.type)
            name = zone.zone if zone else "flex"
            if name in zones:
                zones[name].append(entry.text)
        return zones["prefix"], zones["flex"], zones["suffix"]

    @staticmethod
    def materialized(policy: CaptionPolicy, renderer: str) -> bool:
        return policy.materialize_mode == "always" or renderer == "diffusers"

    @staticmethod
    def render(
        item: ItemCaption, policy: CaptionPolicy, renderer: str, *, seed: int, token: str = ""
    ) -> Rendered:
        p, f, s = captions._zones(item, policy)
        if token and renderer.startswith("ti_"):
            p = (
                [token, *[x for x in p if x != token]]
                if renderer != "ti_a1111"
                else [x for x in p if x != token]
            )
        if renderer in ("kohya", "ti_kohya"):
            head = ", ".join(p)
            line = (
                (head + " " if head else "")
                + "|||"
                + (" " + ", ".join(f) if f else "")
                + (" ||| " + ", ".join(s) if s else "")
            )
            lines: tuple[str, ...] = (line,)
        else:
            lines = (", ".join(p + f + s),)
        descriptions = [d for texts in item.descriptions.values() for d in texts]
        if descriptions and renderer in ("neutral", "kohya"):
            lines = tuple(f"{line}, {d}" for line in lines for d in descriptions)
        lines = tuple(line for line in lines if line.strip(" |"))
        keep = len(p) if renderer in ("neutral", "ti_onetrainer") else None
        return Rendered(lines=lines, keep=keep, materialized=captions.materialized(policy, renderer))

    @staticmethod
    def primary_text(item: ItemCaption, policy: CaptionPolicy) -> str:
        p, f, s = captions._zones(item, policy)
        return ", ".join(p + f + s)

    @staticmethod
    def diffusers_row(item: ItemCaption, policy: CaptionPolicy, *, seed: int) -> dict[str, Any]:
        p, f, s = captions._zones(item, policy)
        text = ", ".join(p + f + s)
        variants = [text, ", ".join(p + list(reversed(f)) + s)]
        return {"text": text, "text_variants": variants, "tags": ", ".join(f)}

    @staticmethod
    def keep_entries(item: ItemCaption, policy: CaptionPolicy) -> list[str]:
        return captions._zones(item, policy)[2]


@dataclass(frozen=True)
class Finding:
    code: str
    severity: str
    message: str
    item: str | None = None
    path: str | None = None


class lint:
    Finding = Finding


STANDINS = {"rand": rand, "buckets": buckets, "captions": captions, "lint": lint}


def logic() -> tuple[SimpleNamespace, list[str]]:
    """The logic namespace (real modules where they exist) and the names standing in."""
    out, standing = {}, []
    for name, standin in STANDINS.items():
        try:
            out[name] = importlib.import_module(f"apps.training.logic.{name}")
        except ImportError:
            out[name] = standin
            standing.append(name)
    return SimpleNamespace(**out), standing
