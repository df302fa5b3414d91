"""Datasets at library scale: validation and statistics of a 100k-member dataset (MariaDB), and
conform throughput against a bare Pillow loop doing the same resize/convert in the same run.

    # validation + statistics on the tags benchmark's library (loaded once, then --reuse)
    .venv/bin/python bench/datasets.py scale --db mysql://root@127.0.0.1:3306/ --db-name bench_tags --reuse
    # conform throughput: 2–4 MP JPEGs → exact 1024×1024 JPEG q95 (SQLite in a temp folder)
    .venv/bin/python bench/datasets.py conform --n 20 --rounds 5 --size 1024
    .venv/bin/python bench/datasets.py conform --n 20 --size 512    # JPEG drafts apply
    .venv/bin/python bench/datasets.py conform --n 40 --rounds 4 --job  # whole jobs vs the bare loop

`scale` (flags as bench/tags.py: --db, --db-name, --items, --reuse, --keep): builds the library
with bench/tagdata.py unless --reuse finds it, makes a dataset whose members are every item
(explicit rows) and one whose members are a saved query, with requirements touching every kind of
rule (size, aspect, pixels, formats, modes, alpha, file size, tag count, a required tag type),
then times `GET /api/datasets/{id}/validate` and `GET /api/datasets/{id}/stats` through Django's
test client (DRF, serializers and SQL all run): median and max over --reps runs after one warm run.

`conform` (flags --n, --rounds, --size, --min-mp, --max-mp, --seed, --db sqlite|URL): N camera-like
JPEGs are ingested and put in a dataset requiring exactly size×size JPEG RGB; three sides run
interleaved picture by picture (bench/rounds.py):
  product  conform's per-item body (plan → media_item_transform → substitution in the dataset →
           the job's per-item record): draft decode where the scale allows, centre crop, LANCZOS
           with reducing_gap 3, JPEG q95 4:4:4, plus the thumbnail, phash, rows and lineage
  bare     a bare Pillow loop writing the same bytes: draft where libjpeg allows it (factor < 1/2),
           the same crop and resize, JPEG q95 4:4:4, the file written; nothing else (the goal's
           baseline: ≥ 0.9×)
  naive    a naive loop: full decode, same crop, LANCZOS without reducing_gap, q95 (4:2:0)
Outputs of product and bare are compared byte for byte. Each round deletes the previous round's
derived items and restores the dataset, so every round transforms again. With --job the product
side is a whole conform job over the N pictures (the transforms' pixel work on every core, the
rows on the job's thread; docs/architecture.md#media-pipelines) against the bare loop over the same
pictures, the order alternating per round; a round counts only if the job created all N results.
"""

from __future__ import annotations

import argparse
import io
import math
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="part", required=True)
    scale = sub.add_parser("scale", help="validation and statistics at library scale (MariaDB)")
    scale.add_argument("--db", required=True, help="mysql://user:pass@host:port/")
    scale.add_argument("--db-name", default="bench_tags")
    scale.add_argument("--items", type=int, default=100_000)
    scale.add_argument("--tags", type=int, default=100_000)
    scale.add_argument("--reps", type=int, default=5)
    scale.add_argument("--reuse", action="store_true")
    scale.add_argument("--keep", action="store_true")
    conform = sub.add_parser("conform", help="conform throughput against a bare Pillow loop")
    conform.add_argument("--n", type=int, default=20)
    conform.add_argument("--rounds", type=int, default=5)
    conform.add_argument("--size", type=int, default=1024)
    conform.add_argument("--min-mp", type=float, default=2.0)
    conform.add_argument("--max-mp", type=float, default=4.0)
    conform.add_argument("--seed", type=int, default=1234)
    conform.add_argument("--db", default="sqlite")
    conform.add_argument(
        "--job",
        action="store_true",
        help="whole conform jobs (pixel work on every core) against the bare loop, side by side per round",
    )
    args = parser.parse_args(argv)
    if args.part == "scale":
        args.keep = args.keep or args.reuse
    return args


# --- scale --------------------------------------------------------------------------------


def _timed(client, url: str, reps: int) -> tuple[float, float, dict]:  # type: ignore[no-untyped-def]
    response = client.get(url)  # warm: plans, buffer pool
    assert response.status_code == 200, response.content[:500]
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        response = client.get(url)
        times.append(time.perf_counter() - t)
    return statistics.median(times), max(times), response.json()


def run_scale(args: argparse.Namespace, work: Path) -> None:
    from bench.tags import django_setup

    reused = django_setup(args.db, work, reuse=args.reuse, name=args.db_name)
    from django.contrib.auth.models import User
    from django.db import connection
    from django.test import Client

    from apps.datasets import services
    from apps.datasets.models import Dataset, DatasetItem
    from apps.media.models import MediaItem
    from apps.tags.models import Tag
    from bench.tagdata import generate

    print(f"MariaDB {connection.cursor().connection.get_server_info()}, database {args.db_name}")
    if not reused:
        t0 = time.perf_counter()
        generate(n_items=args.items, n_tags=args.tags, seed=7, curated_share=0.5)
        print(f"library loaded in {time.perf_counter() - t0:.0f} s")
    n_items = MediaItem.objects.count()
    Dataset.objects.filter(name__startswith="bench-").delete()
    requirements = {
        "min_short_side": 768,
        "max_aspect_milli": 1500,
        "max_pixels": 2_500_000,
        "formats": ["png", "jpeg"],
        "modes": ["RGB"],
        "alpha": "forbidden",
        "max_file_size": 4_000_000,
        "min_tag_count": 20,
        "required_tag_types": ["character"],
    }
    explicit = services.dataset_create(name="bench-explicit", requirements=requirements)
    ids = list(MediaItem.objects.order_by("pk").values_list("pk", flat=True))
    DatasetItem.objects.bulk_create(
        [DatasetItem(dataset=explicit, media_item_id=i) for i in ids], batch_size=5000
    )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE TABLE datasets_datasetitem")
    top_tag = Tag.objects.order_by("-media_count").first()
    queried = services.dataset_create(name="bench-query", query=top_tag.name, requirements=requirements)
    user = User.objects.filter(username="bench").first() or User.objects.create_superuser(
        "bench", password="bench-pw-123"
    )
    client = Client()
    client.force_login(user)
    rows = []
    for dataset, label in ((explicit, "explicit rows"), (queried, f"saved query `{top_tag.name}`")):
        for what, url in (
            ("validate", f"/api/datasets/{dataset.pk}/validate?limit=100"),
            ("stats", f"/api/datasets/{dataset.pk}/stats"),
        ):
            median, worst, body = _timed(client, url, args.reps)
            members = body["members"]
            extra = (
                f"{body['failing']:,} failing"
                if what == "validate"
                else f"{len(body['tags']['frequency'])} top tags"
            )
            rows.append((f"{what}, {label}", members, median, worst, extra))
            print(f"{what}, {label}: {members:,} members, {median:.2f} s, max {worst:.2f} s", flush=True)
    print(f"\n| measure ({n_items:,} items in the library) | members | median s | max s | |")
    print("|---|---|---|---|---|")
    for name, members, median, worst, extra in rows:
        print(f"| {name} | {members:,} | {median:.2f} | {worst:.2f} | {extra} |")
    Dataset.objects.filter(name__startswith="bench-").delete()
    if not args.keep:
        connection.close()
        with connection._nodb_cursor() as cursor:
            cursor.execute(f"DROP DATABASE IF EXISTS `{args.db_name}`")


# --- conform --------------------------------------------------------------------------------


def _centre_fbox(width: int, height: int, size: int) -> tuple[list[float], float, float]:
    """A square centre crop as fractions, rounded as recipes round them."""
    side = min(width, height)
    fw, fh = side / width, side / height
    return [round((1 - fw) / 2, 6), round((1 - fh) / 2, 6), round(fw, 6), round(fh, 6)], side, side


def bare_once(path: Path, out: Path, size: int) -> bytes:
    """The bare loop: draft where libjpeg can (factor < 1/2), crop, LANCZOS (reducing_gap 3),
    JPEG q95 4:4:4, write the file."""
    from PIL import Image

    image = Image.open(path)
    width, height = image.size
    fbox, w, h = _centre_fbox(width, height, size)
    factor = size / max(w, h)
    if factor < 0.5:
        image.draft("RGB", (math.ceil(width * factor), math.ceil(height * factor)))
    image.load()
    unit = image.width / width
    x, y = fbox[0] * width, fbox[1] * height
    cw, ch = fbox[2] * width, fbox[3] * height
    image = image.crop((round(x * unit), round(y * unit), round((x + cw) * unit), round((y + ch) * unit)))
    if image.size != (size, size):
        image = image.resize((size, size), Image.Resampling.LANCZOS, reducing_gap=3.0)
    if image.mode != "RGB":
        image = image.convert("RGB")
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=95, subsampling=0)
    data = buffer.getvalue()
    (out / f"{path.stem}.jpg").write_bytes(data)
    return data


def naive_once(path: Path, out: Path, size: int) -> None:
    from PIL import Image

    with Image.open(path) as source:
        source.load()
        width, height = source.size
        side = min(width, height)
        left, top = (width - side) // 2, (height - side) // 2
        image = source.crop((left, top, left + side, top + side)).resize(
            (size, size), Image.Resampling.LANCZOS
        )
    image.save(out / f"{path.stem}.jpg", "JPEG", quality=95)


def run_conform(args: argparse.Namespace, work: Path) -> None:
    from bench.ingest import django_setup, machine, pictures_generate
    from bench.rounds import interleaved_round, report
    from bench.transforms import product_ingest, product_reset

    django_setup(work, args.db)
    from django.conf import settings
    from django.db import connection

    from apps.datasets import services
    from apps.datasets.models import DatasetItem, Requirements, Subset
    from apps.datasets.services import conform
    from apps.jobs import services as job_services
    from apps.jobs.models import JobItem
    from apps.media.models import MediaItem

    print(f"machine : {machine()}")
    print(f"database: {connection.vendor}")
    paths = pictures_generate(work / "in", args.n, seed=args.seed, min_mp=args.min_mp, max_mp=args.max_mp)
    items = product_ingest(paths)
    dataset = services.dataset_create(
        name="bench",
        requirements={
            "exact_width": args.size,
            "exact_height": args.size,
            "formats": ["jpeg"],
            "modes": ["RGB"],
        },
    )
    services.members_edit(owner=dataset, action="add", item_ids=[i.pk for i in items])
    if args.job:

        def job_reset() -> None:
            product_reset()  # derived items, their rows (dataset rows cascade) and files
            DatasetItem.objects.filter(dataset=dataset).update(excluded=False)

        _job_rounds(args, work, paths, job_reset, lambda: _job_run(dataset))
        return
    job = conform.conform_start(dataset=dataset)
    job = job_services.job_claim(job_id=job.pk)
    req = Requirements.objects.get(dataset=dataset)
    opts = conform.options_clean({})
    subsets = list(Subset.objects.filter(dataset=dataset))  # as conform_run lists them once
    run = conform._Run(job=job, dataset=dataset, req=req, opts=opts, user=None, subsets=subsets)
    print(f"recipe  : {conform.plan_item(item=items[0], req=req, opts=opts).recipe}")

    def reset() -> None:
        product_reset()  # derived items, their rows (dataset rows cascade) and files
        DatasetItem.objects.filter(dataset=dataset).update(excluded=False)
        JobItem.objects.filter(job=job).delete()

    def product(pair) -> None:  # type: ignore[no-untyped-def]
        _, item = pair
        conform._conform_batch(run, [item])  # one item: no pool work ahead of it

    folders = {name: work / f"{name}-out" for name in ("bare", "naive")}
    sides = {
        "product": product,
        "bare": lambda pair: bare_once(pair[0], folders["bare"], args.size),
        "naive": lambda pair: naive_once(pair[0], folders["naive"], args.size),
    }
    labels = {
        "product": "product (conform per item: transform, rows, substitution)",
        "bare": "bare Pillow loop, same bytes (draft where possible)",
        "naive": "naive Pillow loop (no draft, 4:2:0)",
    }
    rounds = []
    for r in range(args.rounds + 1):  # round 0 warms up and is not counted
        reset()
        for folder in folders.values():
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir(parents=True)
        totals = interleaved_round(list(zip(paths, items, strict=True)), sides, round_index=r)
        if r:
            rounds.append(totals)
            print(
                f"round {r}: " + ", ".join(f"{s} {args.n / totals[s][0]:.2f}" for s in sides) + " img/s wall"
            )
    failed = JobItem.objects.filter(job=job, status="failed").count()
    same = 0
    for path, item in zip(paths, items, strict=True):
        derived = MediaItem.objects.get(parent=item)
        same += (Path(settings.MEDIA_ROOT) / derived.storage_key).read_bytes() == (
            folders["bare"] / f"{path.stem}.jpg"
        ).read_bytes()
    print(f"outputs: product == bare loop byte for byte for {same}/{args.n}; {failed} product failures")
    print(f"\nmedians over {args.rounds} interleaved rounds of {args.n} pictures:")
    print("\n".join(report(rounds, per=args.n, unit="img", labels=labels)))


def _job_run(dataset) -> None:  # type: ignore[no-untyped-def]
    """One whole conform job, as a worker runs it (conform_start, then conform_run in-process)."""
    from apps.datasets.services import conform

    job = conform.conform_start(dataset=dataset)
    conform.conform_run(job_id=job.pk)


def _job_rounds(args, work: Path, paths, reset, job) -> None:  # type: ignore[no-untyped-def]
    """--job: per round, the whole conform job over the N pictures and the bare loop over the same
    pictures, the order alternating; ratio = bare time / job time inside each round."""
    from apps.jobs.models import Job
    from bench.rounds import cpu_seconds, report

    out = work / "bare-out"
    totals = []
    for r in range(args.rounds + 1):  # round 0 warms up and is not counted
        reset()
        shutil.rmtree(out, ignore_errors=True)
        out.mkdir(parents=True)
        sides = {"product": job, "bare": lambda: [bare_once(p, out, args.size) for p in paths]}
        result: dict[str, list[float]] = {}
        for name in sides if r % 2 else reversed(list(sides)):
            wall, cpu = time.perf_counter(), cpu_seconds()
            sides[name]()
            result[name] = [time.perf_counter() - wall, cpu_seconds() - cpu]
        done = Job.objects.order_by("-pk").first()
        if done is None or done.counts.get("created") != args.n:
            raise SystemExit(f"the conform job did not create all {args.n} results: {done and done.counts}")
        if r:
            totals.append(result)
            print(
                f"round {r}: job {args.n / result['product'][0]:.2f}, bare {args.n / result['bare'][0]:.2f} "
                f"img/s wall; ratio {result['bare'][0] / result['product'][0]:.2f}",
                flush=True,
            )
    labels = {"product": "conform job (pixel work on every core)", "bare": "bare Pillow loop, same bytes"}
    print(f"\nmedians over {args.rounds} rounds of {args.n} pictures (order alternating):")
    print("\n".join(report(totals, per=args.n, unit="img", labels=labels)))


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="bt-bench-datasets-"))
    try:
        if args.part == "scale":
            run_scale(args, work)
        else:
            run_conform(args, work)
            from bench.ingest import django_teardown

            django_teardown()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
