"""Tagger benchmarks (docs/taggers.md#throughput, bench/README.md#benchtaggerspy).

    .venv/bin/python bench/taggers.py embed --n 256                     # tiny model, SQLite, 5 rounds
    .venv/bin/python bench/taggers.py embed --arch ViT-B-32 --n 512     # ViT-B/32 (random weights)
    .venv/bin/python bench/taggers.py embed --db mysql://root@127.0.0.1:3306/bench_taggers
    .venv/bin/python bench/taggers.py heads                             # 10k × 1k tags, 512-d

`embed`: the product's embed job end to end (item ids from the database, files from storage,
decode and preprocess on a thread pool overlapping the model, fp16 vectors stored in batches)
against a bare open_clip loop over the same files (open, JPEG draft, the same preprocess, batches
of the same size, `encode_image(normalize=True)`, fp16 in memory, nothing stored). Both use the
same model object and batch size, rounds alternate which goes first, and the median per-round
ratio is reported (goal ≥ 0.9). The weights are random (a config name built with
`pretrained=None` and saved as a `local-dir:`): speed does not depend on what they learned, and
nothing is downloaded.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.ingest import django_setup, django_teardown, machine, pictures_generate  # noqa: E402
from bench.rounds import cpu_seconds, report  # noqa: E402

TINY_CONFIG = ROOT / "tests" / "taggers" / "fixtures" / "model_configs" / "Tiny-Test-ViT.json"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="what", required=True)
    embed = sub.add_parser("embed", help="embedding throughput: product job vs a bare open_clip loop")
    embed.add_argument("--n", type=int, default=256, help="pictures per round")
    embed.add_argument("--rounds", type=int, default=5)
    embed.add_argument("--arch", default="Tiny-Test-ViT", help="open_clip config (random weights)")
    embed.add_argument("--batch", type=int, default=128)
    embed.add_argument("--min-mp", type=float, default=0.3)
    embed.add_argument("--max-mp", type=float, default=1.5)
    embed.add_argument("--seed", type=int, default=1234)
    embed.add_argument("--db", default="sqlite")
    embed.add_argument("--device", default="", help="cuda or cpu (default: cuda when present)")
    heads = sub.add_parser("heads", help="head training and scoring on synthetic vectors (no database)")
    heads.add_argument("--n", type=int, default=10_000, help="embeddings")
    heads.add_argument("--tags", type=int, default=1_000)
    heads.add_argument("--dim", type=int, default=512)
    heads.add_argument("--network", default="linear", choices=["linear", "mlp"])
    heads.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    heads.add_argument("--seed", type=int, default=0)
    heads.add_argument("--max-steps", type=int, default=5000, help="the head's step cap (spec: 1,000–5,000)")
    return parser.parse_args(argv)


def model_make(arch: str, folder: Path) -> str:
    """A `local-dir:` model of `arch` with random weights under the model dir; its ref."""
    import open_clip
    import torch
    from safetensors.torch import save_file

    open_clip.add_model_config(TINY_CONFIG.parent)
    torch.manual_seed(0)
    model = open_clip.create_model(arch, pretrained=None)
    target = folder / "open_clip" / "bench"
    target.mkdir(parents=True)
    save_file(
        {k: v.contiguous() for k, v in model.state_dict().items()}, target / "open_clip_model.safetensors"
    )
    config = open_clip.get_model_config(arch)
    (target / "open_clip_config.json").write_text(json.dumps({"model_cfg": config, "preprocess_cfg": {}}))
    return "local-dir:open_clip/bench"


def items_ingest(paths: list[Path]) -> list[int]:
    from apps.media.services import Origin, media_ingest, metadata_clean

    ids = []
    for path in paths:
        with path.open("rb") as stream:
            result = media_ingest(
                stream=stream,
                origin=Origin(kind="upload", original_filename=path.name),
                metadata=metadata_clean(),
                added_by=None,
            )
        ids.append(result.item.pk)
    return ids


def product_round(space, count: int) -> tuple[float, float]:  # type: ignore[no-untyped-def]
    from apps.jobs.models import Job
    from apps.taggers.models import EmbeddingSpace, ImageEmbedding
    from apps.taggers.services import embeddings, spaces

    ImageEmbedding.objects.filter(space=space).delete()
    EmbeddingSpace.objects.filter(pk=space.pk).update(embed_job=None)
    job = spaces.space_embed(space=EmbeddingSpace.objects.get(pk=space.pk))
    wall, cpu = time.perf_counter(), cpu_seconds()
    embeddings.embed_run(job_id=job.pk)
    elapsed = (time.perf_counter() - wall, cpu_seconds() - cpu)
    done = Job.objects.get(pk=job.pk)
    stored = ImageEmbedding.objects.filter(space=space).count()
    if done.status != "succeeded" or stored != count:
        raise SystemExit(f"product round failed: job {done.status} {done.error_message!r}, {stored} rows")
    return elapsed


def bare_round(backend, paths: list[Path], batch: int) -> tuple[float, float]:  # type: ignore[no-untyped-def]
    """The bare open_clip loop: same files (as stored), same preprocess and batch size."""
    import numpy as np
    import torch
    from PIL import Image

    model, transform, device = backend.model, backend.transform, backend.device
    size = backend.input_size
    wall, cpu = time.perf_counter(), cpu_seconds()
    out = []
    for start in range(0, len(paths), batch):
        tensors = []
        for path in paths[start : start + batch]:
            with Image.open(path) as image:
                image.draft("RGB", (2 * size, 2 * size))
                tensors.append(transform(image.convert("RGB")))
        with torch.inference_mode():
            vectors = model.encode_image(torch.stack(tensors).to(device), normalize=True)
        out.append(vectors.float().cpu().numpy().astype(np.float16))
    if sum(len(v) for v in out) != len(paths):
        raise SystemExit("bare loop lost pictures")
    return time.perf_counter() - wall, cpu_seconds() - cpu


def embed(args: argparse.Namespace) -> int:
    work = Path(tempfile.mkdtemp(prefix="bt-bench-taggers-"))
    try:
        django_setup(work, args.db)
        from django.conf import settings
        from django.core.files.storage import default_storage

        settings.BAGGINTAG_MODEL_DIR = work / "models"
        settings.BAGGINTAG_ML_BATCH = args.batch
        ref = model_make(args.arch, work / "models")
        from apps.taggers.services import embeddings, spaces

        space = spaces.space_create(name="bench", model_ref=ref)
        print(f"machine : {machine()}")
        paths = pictures_generate(work / "in", args.n, seed=args.seed, min_mp=args.min_mp, max_mp=args.max_mp)
        ids = items_ingest(paths)
        from apps.media.models import MediaItem

        stored = [
            Path(default_storage.path(k))
            for k in MediaItem.objects.filter(pk__in=ids).values_list("storage_key", flat=True)
        ]
        backend = embeddings.backend_for(space)
        print(
            f"model   : {args.arch} ({space.dim}-d, {space.preprocess_cfg['size']} px) "
            f"on {backend.device}, batch {args.batch}"
        )
        print(f"pictures: {len(stored)} JPEGs of {args.min_mp:g}–{args.max_mp:g} MP")
        bare_round(backend, stored[: min(8, len(stored))], args.batch)  # warm-up
        rounds = []
        for r in range(args.rounds):
            sides = {}
            order = ("product", "bare") if r % 2 == 0 else ("bare", "product")
            for side in order:
                sides[side] = list(
                    product_round(space, len(ids))
                    if side == "product"
                    else bare_round(backend, stored, args.batch)
                )
            rounds.append(sides)
            rate = {k: len(ids) / v[0] for k, v in sides.items()}
            print(f"round {r + 1}: product {rate['product']:.1f} img/s, bare loop {rate['bare']:.1f} img/s")
        labels = {
            "product": "product embed job (end to end, stored)",
            "bare": "bare open_clip loop (in memory)",
        }
        for line in report(rounds, per=len(ids), unit="img", labels=labels):
            print(line)
        speed = statistics.median(r["bare"][0] / r["product"][0] for r in rounds)
        print(f"  product speed / bare loop speed: {speed:.2f} (goal ≥ 0.90)")
        return 0
    finally:
        django_teardown()
        import shutil

        shutil.rmtree(work, ignore_errors=True)


# --- heads (docs/taggers.md#throughput): training 10k × 1k tags < 30 s, scoring 10k items < 5 s ---


def heads_data(n: int, tags: int, dim: int, seed: int):  # type: ignore[no-untyped-def]
    """Planted-signal vectors (fp16, unit length) and labels: prevalence 0.5–10 %, every label
    known (items reviewed), so every tag with ≥ 20 positives trains in the shared head."""
    import numpy as np

    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, dim)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    signal = x @ rng.standard_normal((dim, tags)).astype(np.float32)
    signal += 0.1 * rng.standard_normal(signal.shape).astype(np.float32)
    prevalence = np.linspace(0.005, 0.10, tags)
    ranks = ((1 - prevalence) * (n - 1)).astype(np.int64)
    cut = np.sort(signal, axis=0)[ranks, np.arange(tags)]
    labels = (signal >= cut).astype(np.int8)
    return x.astype(np.float16), labels


def heads(args: argparse.Namespace) -> int:
    import numpy as np

    from apps.taggers.engine.artifacts import head_from_tensors
    from apps.taggers.engine.train import HeadConfig, head_train

    x, labels = heads_data(args.n, args.tags, args.dim, args.seed)
    config = HeadConfig(
        seed=args.seed, network=args.network, max_steps=args.max_steps, min_steps=min(1000, args.max_steps)
    )
    head_train(  # warm-up: imports (torch, scikit-learn, iterstrat) are not part of the number
        embeddings=x[:600], labels=labels[:600], keys=list(range(args.tags)),
        config=HeadConfig(seed=0, min_steps=1, max_steps=1), threads=args.threads or None,
    )  # fmt: skip
    started, cpu = time.perf_counter(), cpu_seconds()
    out = head_train(
        embeddings=x, labels=labels, keys=list(range(args.tags)), config=config, threads=args.threads or None
    )
    train_s, train_cpu = time.perf_counter() - started, cpu_seconds() - cpu
    print(f"trained in {train_s:.1f} s ({train_cpu:.1f} CPU s), {out.steps} steps", flush=True)
    head = head_from_tensors(out.tensors, out.vocab, out.thresholds)
    import os

    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "baggintag.settings.test")
    django.setup()  # predictions_for lives in a service module, which imports models
    from apps.taggers.services.apply import predictions_for

    started = time.perf_counter()
    predicted = predictions_for(head, np.asarray(x, dtype=np.float32), 0.10)
    score_s = time.perf_counter() - started
    import torch

    threads = torch.get_num_threads()
    result = {
        "machine": machine(),
        "n": args.n, "tags": args.tags, "dim": args.dim, "network": args.network,
        "train_threads": args.threads or "default", "scoring_threads": threads,
        "train_seconds": round(train_s, 2), "train_cpu_seconds": round(train_cpu, 2),
        "steps": out.steps, "best_step": out.best_step, "macro_map": out.metrics["macro_map"],
        "n_head": out.metrics["n_head"], "n_indicative": out.metrics["n_indicative"],
        "score_seconds": round(score_s, 2), "stored_per_item": round(sum(map(len, predicted)) / args.n, 1),
        "goals": {"train_seconds": 30, "score_seconds": 5},
    }  # fmt: skip
    print(json.dumps(result, indent=1))
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.what == "heads":
        return heads(args)
    return embed(args) if args.what == "embed" else 2


if __name__ == "__main__":
    sys.exit(main())
