"""Builders for taggers tests: the tiny open_clip model as a mirrored repository, and the §8
synthetic shapes-and-colours pictures (docs/taggers.md#tests)."""

from __future__ import annotations

import io
import json
import random
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw

FIXTURES = Path(__file__).resolve().parent / "fixtures"
MODEL_CONFIGS = FIXTURES / "model_configs"
TINY = "Tiny-Test-ViT"
COLOURS = {"red": (220, 30, 30), "green": (30, 180, 40), "blue": (30, 60, 220)}
SHAPES = ("circle", "square", "triangle")


def tiny_model() -> Any:
    """The tiny model built in memory: `torch.manual_seed(0)`, random init, eval mode."""
    import open_clip
    import torch

    open_clip.add_model_config(MODEL_CONFIGS)
    torch.manual_seed(0)
    model = open_clip.create_model(TINY, pretrained=None)
    model.eval()
    return model


def tiny_mirror(directory: Path) -> Path:
    """The tiny model as an HF-style open_clip repository: open_clip_config.json +
    open_clip_model.safetensors (what `models provision --from-dir` copies)."""
    from safetensors.torch import save_file

    directory.mkdir(parents=True, exist_ok=True)
    model = tiny_model()
    save_file(
        {k: v.contiguous() for k, v in model.state_dict().items()}, directory / "open_clip_model.safetensors"
    )
    config = {"model_cfg": json.loads((MODEL_CONFIGS / f"{TINY}.json").read_text()), "preprocess_cfg": {}}
    (directory / "open_clip_config.json").write_text(json.dumps(config))
    return directory


def tiny_siglip_mirror(directory: Path, logit_bias: float = -10.0) -> Path:
    """The tiny model made SigLIP-style (a `logit_bias`, as open_clip's SigLIP configs set with
    `init_logit_bias`), mirrored like `tiny_mirror`; random init after `torch.manual_seed(1)`."""
    import open_clip
    import torch
    from safetensors.torch import save_file

    cfg = {**json.loads((MODEL_CONFIGS / f"{TINY}.json").read_text()), "init_logit_bias": logit_bias}
    torch.manual_seed(1)
    model = open_clip.model.CLIP(**cfg)
    directory.mkdir(parents=True, exist_ok=True)
    save_file(
        {k: v.contiguous() for k, v in model.state_dict().items()}, directory / "open_clip_model.safetensors"
    )
    (directory / "open_clip_config.json").write_text(json.dumps({"model_cfg": cfg, "preprocess_cfg": {}}))
    return directory


def shapes_picture(seed: int, size: int = 96) -> tuple[bytes, set[str]]:
    """One §8 picture: grey background 100–159, 1–2 objects of a colour and a shape (radius
    12–23 px); PNG bytes and its true tags (colour and shape names)."""
    rng = random.Random(seed)
    grey = rng.randint(100, 159)
    image = Image.new("RGB", (size, size), (grey, grey, grey))
    draw = ImageDraw.Draw(image)
    truth: set[str] = set()
    for _ in range(rng.randint(1, 2)):
        colour, shape = rng.choice(list(COLOURS)), rng.choice(SHAPES)
        radius = rng.randint(12, 23)
        x, y = rng.randint(radius, size - radius), rng.randint(radius, size - radius)
        box = [x - radius, y - radius, x + radius, y + radius]
        if shape == "circle":
            draw.ellipse(box, fill=COLOURS[colour])
        elif shape == "square":
            draw.rectangle(box, fill=COLOURS[colour])
        else:
            draw.polygon(
                [(x, y - radius), (x - radius, y + radius), (x + radius, y + radius)], fill=COLOURS[colour]
            )
        truth |= {colour, shape}
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue(), truth


def solid_png(colour: tuple[int, int, int], size: int = 48, *, seed: int = 0) -> bytes:
    """A flat picture (a few pixels vary with `seed`, so distinct seeds are distinct files)."""
    image = Image.new("RGB", (size, size), colour)
    image.putpixel((seed % size, (seed // size) % size), (seed % 256, 7, 7))
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def planted_vectors(space: Any, items: list[Any], seed: int = 3) -> Any:
    """Random unit vectors (fp16) stored for `items` in `space`; returns them (items × dim)."""
    import numpy as np

    from apps.taggers.models import ImageEmbedding

    rng = np.random.default_rng(seed)
    x = rng.standard_normal((len(items), space.dim))
    x = (x / np.linalg.norm(x, axis=1, keepdims=True)).astype("<f2")
    ImageEmbedding.objects.bulk_create(
        [ImageEmbedding(item=item, space=space, vector=x[n].tobytes()) for n, item in enumerate(items)]
    )
    return x


def planted_head(
    space: Any, n: int = 120, names: tuple[str, ...] = ("red", "green", "blue")
) -> dict[str, Any]:
    """n items with vectors, curated tags planted along random directions, and a head tagger
    `planted` trained on them (its version 1 active)."""
    import numpy as np

    from apps.taggers.models import Tagger
    from apps.taggers.services import training
    from apps.taggers.services.taggers import tagger_create
    from apps.tags.models import TagSet
    from apps.tags.services.names import vocabulary_default
    from tests.tags.factories import assign, items_make, tags_make

    items = items_make(n)
    x = planted_vectors(space, items)
    signal = x.astype(np.float64) @ np.random.default_rng(7).standard_normal((space.dim, len(names)))
    tags = tags_make(names)
    rows = []
    for j, name in enumerate(names):
        rows += [
            (items[k].pk, TagSet.Kind.CURATED, tags[name].pk) for k in np.argsort(-signal[:, j])[: n // 3]
        ]
    assign(rows)
    tagger = tagger_create(
        name="planted", vocabulary=vocabulary_default(), kind=Tagger.Kind.EMBEDDING_HEAD,
        embedding_space=space, params={"min_steps": 100, "max_steps": 100},
    )  # fmt: skip
    version = training.tagger_train(tagger=tagger, seed=0)
    training.train_run(job_id=version.job_id)
    tagger.refresh_from_db()
    assert tagger.active_version_id == version.pk
    return {"tagger": tagger, "items": items, "version": tagger.active_version, "tags": tags}


def scheme_jobs_drain(limit: int = 100, step_task: str | None = None) -> None:
    """Run queued scheme jobs oldest first, as a worker would (plan a run, execute a step batch),
    until none is left; fails if more than `limit` keep coming, or if a step job is not
    `step_task` when one is given."""
    from apps.jobs.models import Job
    from apps.taggers.services import scheme_runs

    for _ in range(limit):
        job = Job.objects.filter(status=Job.Status.QUEUED).order_by("pk").first()
        if job is None:
            return
        if job.params["task"] == "schemes.run":
            scheme_runs.scheme_run_plan(job_id=job.pk)
        else:
            assert step_task is None or job.params["task"] == step_task, job.params
            scheme_runs.step_run_execute(job_id=job.pk)
    raise AssertionError("jobs kept coming")
