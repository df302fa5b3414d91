"""Transform throughput: `media_item_transform` against loops doing the same work, in one run.

    .venv/bin/python bench/transforms.py                    # 40 pictures, SQLite in a temp folder
    .venv/bin/python bench/transforms.py --n 40 --min-mp 2 --max-mp 4 --rounds 5
    .venv/bin/python bench/transforms.py --long 512 --aspect 3:2
    .venv/bin/python bench/transforms.py --n 20 --profile   # pyinstrument one product round
    .venv/bin/python bench/transforms.py --n 30 --bulk --long 512  # the bulk job vs the loops

Every side turns every picture into a 1:1 centre crop scaled to `--long` px (Lanczos), JPEG
quality 90. Four sides, interleaved picture by picture (bench/rounds.py):

  product  the service call (recipe below: draft decode where the scale allows, 4:4:4 chroma at
           quality ≥ 90, a WebP thumbnail, perceptual hash, rows and lineage)
  matched  the same work the fast way minus the rows: the product's exact output bytes (draft
           where libjpeg allows it, reducing_gap 3, 4:4:4), SHA-256, stored content-addressed,
           a 256 px WebP q80 method 0 thumbnail of the result (stored) and the same phash
  output   the draft-aware loop writing the same bytes, and nothing else (the goal's baseline)
  naive    a bare Pillow script: full decode, EXIF transpose, crop, LANCZOS, JPEG q90 with
           Pillow's default 4:2:0 chroma (`--baseline-chroma 444` for 4:4:4)

    {"ops": [{"op": "crop", "aspect": "1:1"}, {"op": "scale", "long": 1024}],
     "output": {"format": "jpg", "quality": 90}}

The product's outputs are compared with the draft-aware loop's (bytes) and its thumbnails with
the matched loop's. Ratios are medians of per-round ratios.

--bulk measures the path users run at scale instead: per round, one bulk transform job over the
N pictures (`media_transform_bulk_start` + `media_transform_bulk_run` in this process, its pixel
work on BAGGINTAG_INGEST_THREADS threads, default every core, its rows in batches) against the
draft-aware loop writing the same bytes, once on one thread and once on a thread pool of the same
size (the same loop body per picture), the order of the three rotating per round.

Each round deletes the previous round's results first: the same recipe on the same parent is
answered from the library without decoding anything.

Flags:
  --n N          pictures per round (default 40)
  --min-mp X     smallest picture, megapixels (default 2)
  --max-mp X     largest picture, megapixels (default 4)
  --long PX      output side (default 1024)
  --aspect A:B   crop aspect (default 1:1)
  --baseline-chroma 420|444  the naive loop's JPEG chroma subsampling: 420 (default, what a
                 bare script gets from Pillow) or 444 (what the product writes at quality ≥ 90)
  --rounds R     interleaved rounds (default 5)
  --seed S       picture generator seed (default 1234)
  --db sqlite|URL  as in bench/ingest.py (a MariaDB server gets a throwaway database)
  --profile      after the timed rounds, profile one product round with pyinstrument
  --bulk         time the bulk job against the one-thread and all-cores draft-aware loops
  --keep         keep the temp folder (pictures, database, media) and print its path

See bench/README.md for what is measured and the figures.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import math
import shutil
import sys
import tempfile
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.ingest import django_setup, django_teardown, machine, pictures_generate


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=40, help="pictures per round (default 40)")
    parser.add_argument("--min-mp", type=float, default=2.0, help="smallest picture in MP (default 2)")
    parser.add_argument("--max-mp", type=float, default=4.0, help="largest picture in MP (default 4)")
    parser.add_argument("--long", type=int, default=1024, help="output side in px (default 1024)")
    parser.add_argument("--aspect", default="1:1", help="crop aspect (default 1:1)")
    parser.add_argument(
        "--baseline-chroma",
        choices=("420", "444"),
        default="420",
        help="baseline JPEG chroma: 420 (Pillow's default) or 444 (the product's at q ≥ 90)",
    )
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds (default 5)")
    parser.add_argument("--seed", type=int, default=1234, help="picture generator seed")
    parser.add_argument(
        "--db",
        default="sqlite",
        help="'sqlite' (throwaway file) or a MariaDB URL mysql://user:pass@host:port/",
    )
    parser.add_argument("--profile", action="store_true", help="pyinstrument one extra product round")
    parser.add_argument("--keep", action="store_true", help="keep the temp folder")
    parser.add_argument("--bulk", action="store_true", help="the bulk job against the loops")
    args = parser.parse_args(argv)
    if args.n < 1 or args.rounds < 1 or not 0 < args.min_mp <= args.max_mp or args.long < 16:
        parser.error("need --n ≥ 1, --rounds ≥ 1, 0 < --min-mp ≤ --max-mp and --long ≥ 16")
    try:
        a, b = (int(p) for p in args.aspect.split(":"))
        args.ratio = a / b
    except ValueError:
        parser.error("--aspect must look like 1:1 or 16:9")
    return args


def recipe(args: argparse.Namespace) -> dict:
    return {
        "ops": [{"op": "crop", "aspect": args.aspect}, {"op": "scale", "long": args.long}],
        "output": {"format": "jpg", "quality": 90},
    }


# --- the baselines ---------------------------------------------------------------------


def naive_once(path: Path, out: Path, *, ratio: float, long: int, chroma: str) -> tuple[int, int]:
    """A naive Pillow script (second line): open, full decode (no draft), EXIF transpose,
    centre crop, Lanczos, JPEG q90 (Pillow's default 4:2:0 unless --baseline-chroma 444)."""
    from PIL import Image, ImageOps

    with Image.open(path) as source:
        source.load()
        image = ImageOps.exif_transpose(source)
    width, height = image.size
    w, h = (width, width / ratio) if width / height <= ratio else (height * ratio, height)
    left, top = (width - w) / 2, (height - h) / 2
    image = image.crop((round(left), round(top), round(left + w), round(top + h)))
    factor = min(1.0, long / max(w, h))
    size = (max(1, round(w * factor)), max(1, round(h * factor)))
    image = image.resize(size, Image.Resampling.LANCZOS)
    extra = {"subsampling": 0} if chroma == "444" else {}  # else Pillow's default, 4:2:0
    image.save(out / f"{path.stem}.jpg", "JPEG", quality=90, **extra)
    return image.size


_TRANSPOSE = {2: 0, 3: 3, 4: 1, 5: 5, 6: 4, 7: 6, 8: 2}  # EXIF orientation -> Image.Transpose


def fast_image(path: Path, *, ratio: float, long: int):
    """The output picture the fast way: a JPEG draft at the output's scale where libjpeg allows
    it (factor < 1/2), EXIF orientation, centre crop, LANCZOS with reducing_gap 3 (the same
    pixel operations as the product, so the bytes can be compared)."""
    from PIL import Image

    image = Image.open(path)
    orientation = image.getexif().get(0x0112, 1)
    nominal_w, nominal_h = image.size if orientation not in (5, 6, 7, 8) else image.size[::-1]
    w, h = (
        (nominal_w, nominal_w / ratio) if nominal_w / nominal_h <= ratio else (nominal_h * ratio, nominal_h)
    )
    factor = min(1.0, long / max(w, h))
    if factor < 0.5:
        image.draft("RGB", (math.ceil(image.width * factor), math.ceil(image.height * factor)))
    image.load()
    if orientation in _TRANSPOSE:
        image = image.transpose(Image.Transpose(_TRANSPOSE[orientation]))
    unit = image.width / nominal_w
    x, y = (nominal_w - w) / 2, (nominal_h - h) / 2
    image = image.crop((round(x * unit), round(y * unit), round((x + w) * unit), round((y + h) * unit)))
    size = (max(1, round(w * factor)), max(1, round(h * factor)))
    if image.size != size:
        image = image.resize(size, Image.Resampling.LANCZOS, reducing_gap=3.0)
    return image


def output_once(path: Path, out: Path, *, ratio: float, long: int) -> bytes:
    """Draft-aware loop writing the product's bytes (JPEG q90, 4:4:4): the output only."""
    image = fast_image(path, ratio=ratio, long=long)
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=90, subsampling=0)
    data = buffer.getvalue()
    (out / f"{path.stem}.jpg").write_bytes(data)
    return data


def matched_once(path: Path, store: Path, *, ratio: float, long: int) -> tuple[str, int]:
    """The product's work minus the database rows: the same output bytes, SHA-256, stored
    content-addressed, a 256 px LANCZOS thumbnail of the result as WebP q80 method 0 (stored)
    and the same DCT phash. Returns (sha256, phash)."""
    from PIL import Image

    from bench.ingest import THUMB, phash

    image = fast_image(path, ratio=ratio, long=long)
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=90, subsampling=0)
    data = buffer.getvalue()
    digest = hashlib.sha256(data).hexdigest()
    folder = f"{digest[:2]}/{digest[2:4]}"
    target = store / "originals" / folder / f"{digest}.jpg"
    target.parent.mkdir(parents=True, exist_ok=True)
    with target.open("xb") as handle:
        handle.write(data)
    image.thumbnail((THUMB, THUMB), Image.Resampling.LANCZOS, reducing_gap=2.0)
    buffer = io.BytesIO()
    image.save(buffer, "WEBP", quality=80, method=0)
    thumb = store / "thumbnails" / folder / f"{digest}.webp"
    thumb.parent.mkdir(parents=True, exist_ok=True)
    thumb.write_bytes(buffer.getvalue())
    return digest, phash(image)


def product_ingest(paths: list[Path]) -> list:
    from apps.media.services import Origin, media_ingest, metadata_clean

    items = []
    for path in paths:
        with path.open("rb") as stream:
            origin = Origin(kind="upload", original_filename=path.name)
            items.append(media_ingest(stream=stream, origin=origin, metadata=metadata_clean()).item)
    return items


def product_reset() -> None:
    """Delete every transform result (rows and files) so the next round computes them again."""
    from django.conf import settings

    from apps.media.models import MediaItem

    results = MediaItem.objects.filter(parent__isnull=False)
    keys = [k for pair in results.values_list("storage_key", "thumbnail_key") for k in pair if k]
    results.delete()
    media = Path(settings.MEDIA_ROOT)
    for key in keys:
        (media / key).unlink(missing_ok=True)


def product_once(item, clean_recipe: dict) -> tuple[int, int]:
    from apps.media.services.transforms import media_item_transform

    result = media_item_transform(item=item, recipe=clean_recipe)
    if result.duplicate:
        raise SystemExit(f"item {item.pk} came back as a duplicate: the round is not measuring transforms")
    return result.item.width, result.item.height


LABELS = {
    "product": "product (media_item_transform)",
    "matched": "matched loop (output + thumbnail + phash, no rows)",
    "output": "draft-aware loop, same output bytes only",
    "naive": "naive loop (no draft)",
}


def timed_round(
    paths: list[Path], items: list, work: Path, args: argparse.Namespace, *, round_index: int
) -> dict[str, list[float]]:
    """The four sides over the same pictures, interleaved picture by picture (bench/rounds.py)."""
    from bench.rounds import interleaved_round

    folders = {name: work / f"{name}-out" for name in ("matched", "output", "naive")}
    for folder in folders.values():
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
    product_reset()
    spec = recipe(args)
    shape = {"ratio": args.ratio, "long": args.long}
    sides = {
        "product": lambda pair: product_once(pair[1], spec),
        "matched": lambda pair: matched_once(pair[0], folders["matched"], **shape),
        "output": lambda pair: output_once(pair[0], folders["output"], **shape),
        "naive": lambda pair: naive_once(pair[0], folders["naive"], chroma=args.baseline_chroma, **shape),
    }
    return interleaved_round(list(zip(paths, items, strict=True)), sides, round_index=round_index)


def product_round(items: list, spec: dict) -> float:
    product_reset()
    start = time.perf_counter()
    for item in items:
        product_once(item, spec)
    return time.perf_counter() - start


def bulk_rounds(paths: list[Path], items: list, work: Path, args: argparse.Namespace) -> None:
    """--bulk: per round, the bulk transform job over every item, the draft-aware loop on one
    thread and the same loop on a pool of the job's thread count; ratio = loop time / job time
    inside each round, median over rounds. Round 0 warms up and is not counted."""
    from concurrent.futures import ThreadPoolExecutor

    from django.conf import settings

    from apps.jobs.models import Job
    from apps.media.models import MediaItem
    from apps.media.services.batch import ingest_threads
    from apps.media.services.transforms import media_transform_bulk_run, media_transform_bulk_start
    from bench.rounds import cpu_seconds, report, rotated

    threads = ingest_threads()
    shape = {"ratio": args.ratio, "long": args.long}
    outs = {"loop": work / "loop-out", "pool": work / "pool-out"}

    def job() -> None:
        started = media_transform_bulk_start(ids=[i.pk for i in items], recipe=recipe(args))
        media_transform_bulk_run(job_id=started.pk)
        done = Job.objects.get(pk=started.pk)
        if done.counts != {"created": len(items)}:
            raise SystemExit(f"the bulk job did not create all {len(items)} results: {done.counts}")

    def pooled() -> None:
        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(lambda p: output_once(p, outs["pool"], **shape), paths))

    sides = {
        "product": job,
        "loop": lambda: [output_once(p, outs["loop"], **shape) for p in paths],
        "pool": pooled,
    }
    totals = []
    for r in range(args.rounds + 1):
        product_reset()
        for folder in outs.values():
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir(parents=True)
        result: dict[str, list[float]] = {}
        for name in rotated(list(sides), r):
            wall, cpu = time.perf_counter(), cpu_seconds()
            sides[name]()
            result[name] = [time.perf_counter() - wall, cpu_seconds() - cpu]
        if r:
            totals.append(result)
            print(
                f"round {r}: "
                + ", ".join(f"{name} {args.n / result[name][0]:6.2f}" for name in sides)
                + f" img/s wall; loop/job {result['loop'][0] / result['product'][0]:.2f}, "
                f"pool/job {result['pool'][0] / result['product'][0]:.2f}",
                flush=True,
            )
    same = {"loop": 0, "pool": 0}
    for item, path in zip(items, paths, strict=True):
        data = (Path(settings.MEDIA_ROOT) / MediaItem.objects.get(parent=item).storage_key).read_bytes()
        for name in same:
            same[name] += data == (outs[name] / f"{path.stem}.jpg").read_bytes()
    print(
        f"outputs : bulk job vs one-thread loop {same['loop']}/{len(items)}, vs all-cores loop "
        f"{same['pool']}/{len(items)} byte-identical ({threads} threads)"
    )
    labels = {
        "product": f"bulk transform job ({threads} threads, rows in batches)",
        "loop": "draft-aware loop, one thread",
        "pool": f"draft-aware loop, {threads} threads",
    }
    print(f"\nmedians over {args.rounds} rounds of {args.n} pictures (order rotating):")
    print("\n".join(report(totals, per=args.n, unit="img", labels=labels)))


def outputs_compare(items: list, work: Path) -> str:
    """The product's stored results against the draft-aware loop's (bytes) and the naive
    loop's (mean absolute pixel difference, 0–255)."""
    from django.conf import settings
    from PIL import Image, ImageChops, ImageStat

    from apps.media.models import MediaItem

    diffs, same, thumbs = [], 0, 0
    for item in items:
        result = MediaItem.objects.get(parent=item)
        product_path = Path(settings.MEDIA_ROOT) / result.storage_key
        stem = Path(item.name).stem
        same += product_path.read_bytes() == (work / "output-out" / f"{stem}.jpg").read_bytes()
        digest = result.sha256
        thumb = work / "matched-out" / "thumbnails" / digest[:2] / digest[2:4] / f"{digest}.webp"
        thumbs += thumb.exists() and (Path(settings.MEDIA_ROOT) / result.thumbnail_key).read_bytes() == (
            thumb.read_bytes()
        )
        with Image.open(product_path) as a, Image.open(work / "naive-out" / f"{stem}.jpg") as b:
            diffs.append(
                sum(ImageStat.Stat(ImageChops.difference(a.convert("RGB"), b.convert("RGB"))).mean) / 3
            )
    return (
        f"outputs : product vs draft-aware loop {same}/{len(items)} byte-identical, thumbnails vs "
        f"matched loop {thumbs}/{len(items)} byte-identical; mean |product − naive| "
        f"{sum(diffs) / len(diffs):.2f}/255 (max {max(diffs):.2f})"
    )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="bt-bench-"))
    try:
        django_setup(work, args.db)
        from django.db import connection
        from PIL import Image

        from apps.media.services.recipes import recipe_clean

        print(f"machine : {machine()}")
        print(f"database: {connection.vendor} {connection.settings_dict['NAME']}")
        print(f"recipe  : {recipe(args)}")
        print(
            f"pictures: generating {args.n} JPEGs of {args.min_mp:g}–{args.max_mp:g} MP (seed {args.seed}) …",
            flush=True,
        )
        t0 = time.perf_counter()
        paths = pictures_generate(work / "in", args.n, seed=args.seed, min_mp=args.min_mp, max_mp=args.max_mp)
        warm = pictures_generate(
            work / "warm", 2, seed=args.seed, min_mp=args.min_mp, max_mp=args.max_mp, tag="w"
        )
        total_px = 0
        for p in paths:
            with Image.open(p) as im:
                total_px += im.width * im.height
        print(
            f"          {sum(p.stat().st_size for p in paths) / 1e6:.1f} MB, {total_px / 1e6:.1f} MP "
            f"in all ({time.perf_counter() - t0:.1f} s)"
        )
        items = product_ingest(paths)
        warm_items = product_ingest(warm)
        spec = recipe_clean(recipe(args))
        if args.bulk:
            bulk_rounds(paths, items, work, args)
            return 0

        timed_round(warm, warm_items, work, args, round_index=0)  # warm-up: imports, codecs, DB
        from bench.rounds import report

        rounds: list[dict[str, list[float]]] = []
        for r in range(args.rounds):
            rounds.append(timed_round(paths, items, work, args, round_index=r))
            print(
                f"round {r + 1}: "
                + ", ".join(f"{side} {args.n / rounds[-1][side][0]:6.2f}" for side in LABELS)
                + " img/s (wall)",
                flush=True,
            )
        print(outputs_compare(items, work))
        print(f"\nmedians over {args.rounds} interleaved rounds of {args.n} pictures:")
        print("\n".join(report(rounds, per=args.n, unit="img", labels=LABELS)))

        if args.profile:
            from pyinstrument import Profiler

            profiler = Profiler(interval=0.0005)
            profiler.start()
            product_round(items, spec)
            profiler.stop()
            print("\nproduct round, pyinstrument:")
            print(profiler.output_text(unicode=True, color=False, show_all=False))
    finally:
        try:
            django_teardown()
        except Exception as exc:  # teardown must not hide the real error
            print(f"teardown: {exc}", file=sys.stderr)
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
