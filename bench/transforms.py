"""Transform throughput: `media_item_transform` against a bare Pillow loop, in one run.

    .venv/bin/python bench/transforms.py                    # 40 pictures, SQLite in a temp folder
    .venv/bin/python bench/transforms.py --n 40 --min-mp 2 --max-mp 4 --rounds 3
    .venv/bin/python bench/transforms.py --long 512 --aspect 3:2
    .venv/bin/python bench/transforms.py --n 20 --profile   # cProfile one product round

Both sides turn every picture into a 1:1 centre crop scaled to `--long` px (Lanczos), saved as
JPEG quality 90. The product is the service call (recipe below, 4:4:4 chroma at quality ≥ 90, a
WebP thumbnail, perceptual hash, rows and lineage); the baseline is what a bare Pillow script
does: open, full decode, EXIF transpose, centre crop, resize LANCZOS, save JPEG q90 (Pillow's
default 4:2:0 chroma) to a temp folder.

    {"ops": [{"op": "crop", "aspect": "1:1"}, {"op": "scale", "long": 1024}],
     "output": {"format": "jpg", "quality": 90}}

Each round deletes the previous round's results first: the same recipe on the same parent is
answered from the library without decoding anything.

Flags:
  --n N          pictures per round (default 40)
  --min-mp X     smallest picture, megapixels (default 2)
  --max-mp X     largest picture, megapixels (default 4)
  --long PX      output side (default 1024)
  --aspect A:B   crop aspect (default 1:1)
  --baseline-chroma 420|444  the baseline's JPEG chroma subsampling: 420 (default, what a bare
                 script gets from Pillow) or 444 (what the product writes at quality ≥ 90; with it
                 both sides write the same bytes, so the work is equal)
  --rounds R     timed rounds; the best round counts (default 3)
  --seed S       picture generator seed (default 1234)
  --db sqlite|URL  as in bench/ingest.py (a MariaDB server gets a throwaway database)
  --profile      after the timed rounds, profile one product round and print the top entries
  --keep         keep the temp folder (pictures, database, media) and print its path

See bench/README.md for what is measured and the figures.
"""

from __future__ import annotations

import argparse
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
    parser.add_argument("--rounds", type=int, default=3, help="timed rounds, best counts (default 3)")
    parser.add_argument("--seed", type=int, default=1234, help="picture generator seed")
    parser.add_argument(
        "--db",
        default="sqlite",
        help="'sqlite' (throwaway file) or a MariaDB URL mysql://user:pass@host:port/",
    )
    parser.add_argument("--profile", action="store_true", help="cProfile one extra product round")
    parser.add_argument("--keep", action="store_true", help="keep the temp folder")
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


# --- the two sides ----------------------------------------------------------------------


def baseline_once(path: Path, out: Path, *, ratio: float, long: int, chroma: str) -> tuple[int, int]:
    """A bare Pillow script: open, full decode, EXIF transpose, centre crop, Lanczos, JPEG q90."""
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


def timed_round(
    paths: list[Path], items: list, out: Path, args: argparse.Namespace, *, flip: bool
) -> dict[str, tuple[float, float]]:
    """Both loops over the same pictures, interleaved picture by picture (as bench/ingest.py).

    Returns {side: (wall seconds, CPU seconds)}.
    """
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    product_reset()
    spec = recipe(args)
    totals = {"baseline": [0.0, 0.0], "product": [0.0, 0.0]}
    for i, (path, item) in enumerate(zip(paths, items, strict=True)):
        sides = ("baseline", "product") if (i + flip) % 2 == 0 else ("product", "baseline")
        sizes = {}
        for side in sides:
            wall, cpu = time.perf_counter(), time.process_time()
            if side == "baseline":
                sizes[side] = baseline_once(
                    path, out, ratio=args.ratio, long=args.long, chroma=args.baseline_chroma
                )
            else:
                sizes[side] = product_once(item, spec)
            totals[side][0] += time.perf_counter() - wall
            totals[side][1] += time.process_time() - cpu
        if sizes["baseline"] != sizes["product"]:
            raise SystemExit(f"{path.name}: baseline made {sizes['baseline']}, product {sizes['product']}")
    return {side: (wall, cpu) for side, (wall, cpu) in totals.items()}


def product_round(items: list, spec: dict) -> float:
    product_reset()
    start = time.perf_counter()
    for item in items:
        product_once(item, spec)
    return time.perf_counter() - start


def outputs_compare(items: list, out: Path) -> str:
    """Mean absolute difference between the product's and the baseline's outputs (0–255)."""
    from django.conf import settings
    from PIL import Image, ImageChops, ImageStat

    from apps.media.models import MediaItem

    diffs, sizes, same = [], [0, 0], 0
    for item in items:
        result = MediaItem.objects.get(parent=item)
        product_path = Path(settings.MEDIA_ROOT) / result.storage_key
        baseline_path = out / f"{Path(item.name).stem}.jpg"
        same += product_path.read_bytes() == baseline_path.read_bytes()
        with Image.open(product_path) as a, Image.open(baseline_path) as b:
            diffs.append(
                sum(ImageStat.Stat(ImageChops.difference(a.convert("RGB"), b.convert("RGB"))).mean) / 3
            )
        sizes[0] += product_path.stat().st_size
        sizes[1] += baseline_path.stat().st_size
    return (
        f"outputs : {same}/{len(items)} byte-identical; mean |product − baseline| "
        f"{sum(diffs) / len(diffs):.2f}/255 (max {max(diffs):.2f}); "
        f"JPEG bytes product {sizes[0] / 1e6:.1f} MB, baseline {sizes[1] / 1e6:.1f} MB"
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

        out = work / "baseline-out"
        timed_round(warm, warm_items, out, args, flip=False)  # warm-up: imports, codec tables, DB
        rounds: list[dict[str, tuple[float, float]]] = []
        for r in range(args.rounds):
            rounds.append(timed_round(paths, items, out, args, flip=bool(r % 2)))
            print(
                f"round {r + 1}: baseline {args.n / rounds[-1]['baseline'][0]:6.2f} img/s, "
                f"product {args.n / rounds[-1]['product'][0]:6.2f} img/s  (wall)",
                flush=True,
            )
        print(outputs_compare(items, out))

        def rate(side: str, index: int) -> float:
            return args.n / min(times[side][index] for times in rounds)

        print()
        for index, clock in ((0, "wall"), (1, "cpu")):
            base_rate, prod_rate = rate("baseline", index), rate("product", index)
            print(
                f"[{clock:4s}] baseline (bare Pillow):          {base_rate:7.2f} img/s  "
                f"({1000 / base_rate:5.1f} ms/img, best of {args.rounds})"
            )
            print(
                f"[{clock:4s}] product (media_item_transform): {prod_rate:7.2f} img/s  "
                f"({1000 / prod_rate:5.1f} ms/img, best of {args.rounds})"
            )
            print(f"[{clock:4s}] ratio product/baseline: {prod_rate / base_rate:7.2f}  (goal ≥ 1.0)")

        if args.profile:
            import cProfile
            import pstats

            profiler = cProfile.Profile()
            profiler.enable()
            product_round(items, spec)
            profiler.disable()
            print("\nproduct round, cProfile (top 30 by cumulative time):")
            pstats.Stats(profiler).sort_stats("cumulative").print_stats(30)
            pstats.Stats(profiler).sort_stats("tottime").print_stats(20)
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
