"""Validation against an oracle: random requirements on real items, the report compared with the
same rules evaluated in Python on what Pillow reads from the stored files (both databases)."""

from __future__ import annotations

import random
from typing import Any

import pytest
from django.core.files.storage import default_storage
from PIL import Image

from apps.core.exceptions import DomainError
from apps.datasets import selectors, services
from apps.media.models import MediaItem
from tests import mediafiles
from tests.tags.factories import make_item

pytestmark = pytest.mark.django_db

ROUNDS = 30
FORMATS = ["png", "jpeg", "webp", "bmp"]


def _library(rng: random.Random) -> list[MediaItem]:
    items = []
    for seed in range(14):
        fmt = rng.choice(FORMATS)
        alpha = fmt in ("png", "webp") and rng.random() < 0.5
        size = (rng.randint(16, 96), rng.randint(16, 96))
        data = mediafiles.image_bytes(fmt, size=size, seed=seed, alpha=alpha)
        items.append(make_item(data=data, filename=f"o{seed}.{fmt}"))
    return items


def _measured(item: MediaItem) -> dict[str, Any]:
    """What Pillow and the file system say about the stored file."""
    with default_storage.open(item.storage_key) as handle:
        data = handle.read()
    with default_storage.open(item.storage_key) as handle, Image.open(handle) as image:
        width, height = image.size
        return {
            "width": width,
            "height": height,
            "format": (image.format or "").lower(),
            "mode": image.mode,
            "alpha": image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info,
            "bytes": len(data),
        }


def _fails(rule: str, limit: Any, m: dict[str, Any]) -> bool:
    w, h = m["width"], m["height"]
    checks = {
        "exact_width": lambda: w != limit,
        "exact_height": lambda: h != limit,
        "min_width": lambda: w < limit,
        "max_width": lambda: w > limit,
        "min_height": lambda: h < limit,
        "max_height": lambda: h > limit,
        "min_short_side": lambda: min(w, h) < limit,
        "min_aspect_milli": lambda: round(1000 * w / h) < limit,
        "max_aspect_milli": lambda: round(1000 * w / h) > limit,
        "min_pixels": lambda: w * h < limit,
        "max_pixels": lambda: w * h > limit,
        "formats": lambda: m["format"] not in limit,
        "modes": lambda: m["mode"] not in limit,
        "alpha": lambda: m["alpha"] != (limit == "required"),
        "max_file_size": lambda: m["bytes"] > limit,
    }
    return checks[rule]()


def _random_requirements(rng: random.Random) -> dict[str, Any]:
    pool: dict[str, Any] = {
        "exact_width": rng.randint(16, 96),
        "min_width": rng.randint(16, 96),
        "max_width": rng.randint(16, 96),
        "min_height": rng.randint(16, 96),
        "max_height": rng.randint(16, 96),
        "min_short_side": rng.randint(16, 96),
        "min_aspect_milli": rng.randint(200, 3000),
        "max_aspect_milli": rng.randint(200, 3000),
        "min_pixels": rng.randint(256, 9216),
        "max_pixels": rng.randint(256, 9216),
        "formats": rng.sample(FORMATS, rng.randint(1, 3)),
        "modes": rng.sample(["RGB", "RGBA", "L"], rng.randint(1, 2)),
        "alpha": rng.choice(["required", "forbidden"]),
        "max_file_size": rng.randint(100, 20_000),
    }
    return {key: pool[key] for key in rng.sample(sorted(pool), rng.randint(1, 5))}


def test_report_matches_pillow_on_random_requirements() -> None:
    rng = random.Random(13)
    items = _library(rng)
    measured = {item.pk: _measured(item) for item in items}
    compared = 0
    for round_no in range(ROUNDS):
        requirements = _random_requirements(rng)
        try:
            dataset = services.dataset_create(name=f"oracle {round_no}", requirements=requirements)
        except DomainError:  # a random contradiction (min above max, …): refused, as it should be
            continue
        services.members_edit(owner=dataset, action="add", item_ids=list(measured))
        report = selectors.validation_report(dataset=dataset, limit=1000)
        got = {r["requirement"]: sorted(row["id"] for row in r["items"]) for r in report["requirements"]}
        expected = {
            rule: sorted(pk for pk, m in measured.items() if _fails(rule, limit, m))
            for rule, limit in requirements.items()
        }
        assert got == expected, requirements
        counts = {r["requirement"]: r["count"] for r in report["requirements"]}
        assert counts == {rule: len(pks) for rule, pks in expected.items()}, requirements
        assert report["members"] == len(measured)
        assert report["failing"] == len(set().union(*expected.values())), requirements
        compared += 1
    assert compared >= ROUNDS // 2
