"""Image ingest throughput: `media_ingest` against a bare Pillow loop, in one run.

    .venv/bin/python bench/ingest.py --n 40                 # SQLite file in a temp folder
    .venv/bin/python bench/ingest.py --n 40 --min-mp 1 --max-mp 4 --rounds 3
    .venv/bin/python bench/ingest.py --db mysql://user:pass@127.0.0.1:3306/   # MariaDB
    .venv/bin/python bench/ingest.py --n 20 --profile       # cProfile one product round

Flags:
  --n N          pictures per round (default 40)
  --min-mp X     smallest picture, megapixels (default 1)
  --max-mp X     largest picture, megapixels (default 4)
  --rounds R     timed rounds; the best round counts (default 3)
  --seed S       picture generator seed (default 1234)
  --db sqlite|URL  `sqlite` (default): a throwaway SQLite file; or a MariaDB/MySQL URL whose
                 server gets its own database `bench_ingest`, created and dropped by this script
  --profile      after the timed rounds, profile one product round and print the top entries
  --keep         keep the temp folder (pictures, database, media) and print its path

See bench/README.md for what is measured and the figures.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import math
import os
import platform
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
BENCH_DB = "bench_ingest"
THUMB = 256


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=40, help="pictures per round (default 40)")
    parser.add_argument("--min-mp", type=float, default=1.0, help="smallest picture in MP (default 1)")
    parser.add_argument("--max-mp", type=float, default=4.0, help="largest picture in MP (default 4)")
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
    if args.n < 1 or args.rounds < 1 or not 0 < args.min_mp <= args.max_mp:
        parser.error("need --n ≥ 1, --rounds ≥ 1 and 0 < --min-mp ≤ --max-mp")
    return args


# --- Django -----------------------------------------------------------------------------


def django_setup(work: Path, db: str) -> None:
    """Test settings, pointed at a temp data folder, temp MEDIA_ROOT and the bench database."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    os.environ["DJANGO_SETTINGS_MODULE"] = "baggintag.settings.test"
    os.environ["BAGGINTAG_DATA_DIR"] = str(work / "data")
    os.environ["MEDIA_ROOT"] = str(work / "media")
    os.environ["DJANGO_SECRET_KEY"] = "bench-not-secret"
    if db == "sqlite":
        os.environ["TEST_DATABASE_URL"] = f"sqlite:///{work / 'bench.sqlite3'}"
    else:
        parts = urlsplit(db)
        if not parts.scheme.startswith(("mysql", "mariadb")):
            raise SystemExit(f"--db must be 'sqlite' or a mysql:// URL, not {db!r}")
        os.environ["TEST_DATABASE_URL"] = urlunsplit(
            (parts.scheme, parts.netloc, f"/{BENCH_DB}", parts.query, "")
        )

    import django

    django.setup()
    from django.db import connection

    if connection.vendor == "mysql":
        with connection._nodb_cursor() as cursor:
            cursor.execute(f"DROP DATABASE IF EXISTS `{BENCH_DB}`")
            cursor.execute(f"CREATE DATABASE `{BENCH_DB}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def django_teardown() -> None:
    from django.db import connection

    if connection.vendor == "mysql":
        connection.close()
        with connection._nodb_cursor() as cursor:
            cursor.execute(f"DROP DATABASE IF EXISTS `{BENCH_DB}`")
    connection.close()


# --- pictures ---------------------------------------------------------------------------

_ASPECTS = [(1, 1), (4, 3), (3, 2), (16, 9), (3, 4), (2, 3), (9, 16), (5, 4)]


def photo(rng: random.Random, width: int, height: int):
    """A photo-like RGB picture: smooth colour fields, a gradient, shapes, texture and grain."""
    from PIL import Image, ImageChops, ImageDraw, ImageFilter

    # Smooth colour field: a tiny random image upscaled (sky, walls, out-of-focus background).
    small = Image.new("RGB", (rng.randint(3, 8), rng.randint(3, 8)))
    small.putdata([tuple(rng.randrange(256) for _ in range(3)) for _ in range(small.width * small.height)])
    image = small.resize((width, height), Image.Resampling.BICUBIC)
    # A rotated linear gradient blended towards a second colour (light fall-off).
    gradient = Image.linear_gradient("L").rotate(
        rng.uniform(0, 360), Image.Resampling.BILINEAR, fillcolor=128
    )
    tint = Image.new("RGB", (width, height), tuple(rng.randrange(256) for _ in range(3)))
    image = Image.composite(image, tint, gradient.resize((width, height), Image.Resampling.BILINEAR))
    # Objects with edges, softened a little, as a lens would.
    draw = ImageDraw.Draw(image)
    for _ in range(rng.randint(6, 14)):
        x0, y0 = rng.randrange(width), rng.randrange(height)
        x1 = x0 + rng.randint(width // 20, width // 3)
        y1 = y0 + rng.randint(height // 20, height // 3)
        colour = tuple(rng.randrange(256) for _ in range(3))
        shape = rng.choice(("ellipse", "rectangle", "polygon"))
        if shape == "ellipse":
            draw.ellipse([x0, y0, x1, y1], fill=colour)
        elif shape == "rectangle":
            draw.rectangle([x0, y0, x1, y1], fill=colour)
        else:
            draw.polygon([(rng.randrange(width), rng.randrange(height)) for _ in range(5)], fill=colour)
    for _ in range(rng.randint(2, 5)):
        x, y = rng.randrange(width), rng.randrange(height)
        draw.line(
            [(x, y), (rng.randrange(width), rng.randrange(height))],
            fill=tuple(rng.randrange(256) for _ in range(3)),
            width=rng.randint(2, 12),
        )
    image = image.filter(ImageFilter.GaussianBlur(rng.uniform(0.8, 2.0)))
    # Mid-frequency texture (foliage, fabric) and per-channel sensor grain.
    texture = Image.effect_noise((max(1, width // 6), max(1, height // 6)), rng.uniform(20, 40))
    texture = texture.resize((width, height), Image.Resampling.BICUBIC)
    image = ImageChops.add(image, Image.merge("RGB", (texture,) * 3), 1.0, -128)
    grain = Image.merge("RGB", [Image.effect_noise((width, height), rng.uniform(3, 6)) for _ in range(3)])
    return ImageChops.add(image, grain, 1.0, -128)


def pictures_generate(
    folder: Path, n: int, *, seed: int, min_mp: float, max_mp: float, tag: str = ""
) -> list[Path]:
    """N reproducible JPEGs (quality 90, EXIF like a camera's) of min_mp–max_mp megapixels."""
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    rng = random.Random(f"{seed}{tag}")
    paths = []
    for i in range(n):
        aw, ah = rng.choice(_ASPECTS)
        pixels = rng.uniform(min_mp, max_mp) * 1_000_000
        width = max(16, round(math.sqrt(pixels * aw / ah)))
        height = max(16, round(width * ah / aw))
        exif = Image.Exif()
        exif[0x010F] = "Bench"
        exif[0x0110] = f"Synthetic {i}"
        exif[0x0112] = 1
        path = folder / f"photo-{tag}{i:04d}.jpg"
        photo(rng, width, height).save(path, "JPEG", quality=90, exif=exif)
        paths.append(path)
    return paths


# --- the two loops ----------------------------------------------------------------------


def baseline_once(path: Path, out: Path) -> None:
    """What a bare Pillow script does: hash, verify, decode fully, thumbnail, WebP."""
    from PIL import Image

    data = path.read_bytes()
    hashlib.sha256(data).hexdigest()
    with Image.open(io.BytesIO(data)) as image:
        image.verify()
    with Image.open(io.BytesIO(data)) as image:
        image.load()  # full-size decode: thumbnail()'s own draft is too late after load()
        image.thumbnail((THUMB, THUMB))
        image.save(out / f"{path.stem}.webp", "WEBP", quality=80, method=2)


def baseline_prepare(out: Path) -> None:
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)


def product_reset() -> None:
    """Empty the library (rows and files) so the next round stores new items, not duplicates."""
    from django.conf import settings

    from apps.media.models import MediaItem, MediaSource

    MediaSource.objects.all().delete()
    MediaItem.objects.all().delete()
    media = Path(settings.MEDIA_ROOT)
    shutil.rmtree(media, ignore_errors=True)
    media.mkdir(parents=True)


def product_once(path: Path) -> None:
    from apps.media.services import Origin, media_ingest, metadata_clean

    with path.open("rb") as stream:
        result = media_ingest(
            stream=stream,
            origin=Origin(kind="upload", original_filename=path.name),
            metadata=metadata_clean(),
            added_by=None,
        )
    if result.duplicate:
        raise SystemExit(f"{path.name} came back as a duplicate: the round is not measuring ingest")


def product_check(count: int) -> None:
    from apps.media.models import MediaItem

    stored = MediaItem.objects.count()
    if stored != count:
        raise SystemExit(f"expected {count} items after the round, found {stored}")


def timed_round(paths: list[Path], out: Path, *, flip: bool) -> dict[str, tuple[float, float]]:
    """Both loops over the same pictures, interleaved picture by picture.

    Interleaving puts both sides under the same background load (this machine is shared); the
    order within each pair alternates. Returns {side: (wall seconds, CPU seconds)}.
    """
    baseline_prepare(out)
    product_reset()
    totals = {"baseline": [0.0, 0.0], "product": [0.0, 0.0]}
    for i, path in enumerate(paths):
        sides = ("baseline", "product") if (i + flip) % 2 == 0 else ("product", "baseline")
        for side in sides:
            wall, cpu = time.perf_counter(), time.process_time()
            if side == "baseline":
                baseline_once(path, out)
            else:
                product_once(path)
            totals[side][0] += time.perf_counter() - wall
            totals[side][1] += time.process_time() - cpu
    product_check(len(paths))
    return {side: (wall, cpu) for side, (wall, cpu) in totals.items()}


def product_round(paths: list[Path]) -> float:
    product_reset()
    start = time.perf_counter()
    for path in paths:
        product_once(path)
    elapsed = time.perf_counter() - start
    product_check(len(paths))
    return elapsed


def machine() -> str:
    import PIL

    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return (
        f"{model}; cpu_count={os.cpu_count()} (usable {usable}); "
        f"Python {platform.python_version()}; Pillow {PIL.__version__}; {platform.system()}"
    )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="bt-bench-"))
    try:
        django_setup(work, args.db)
        from django.db import connection

        db_label = f"{connection.vendor} {connection.settings_dict['NAME']}"
        print(f"machine : {machine()}")
        print(f"database: {db_label}")
        print(
            f"pictures: generating {args.n} JPEGs of {args.min_mp:g}–{args.max_mp:g} MP (seed {args.seed}) …",
            flush=True,
        )
        t0 = time.perf_counter()
        paths = pictures_generate(work / "in", args.n, seed=args.seed, min_mp=args.min_mp, max_mp=args.max_mp)
        warm = pictures_generate(
            work / "warm", 2, seed=args.seed, min_mp=args.min_mp, max_mp=args.max_mp, tag="w"
        )
        total_bytes = sum(p.stat().st_size for p in paths)
        total_px = 0
        from PIL import Image

        for p in paths:
            with Image.open(p) as im:
                total_px += im.width * im.height
        print(
            f"          {total_bytes / 1e6:.1f} MB, {total_px / 1e6:.1f} MP in all, "
            f"{total_bytes * 8 / total_px:.2f} bits/pixel ({time.perf_counter() - t0:.1f} s)"
        )

        out = work / "baseline-out"
        timed_round(warm, out, flip=False)  # warm-up: imports, codec tables, DB, folders

        rounds: list[dict[str, tuple[float, float]]] = []
        for r in range(args.rounds):
            rounds.append(timed_round(paths, out, flip=bool(r % 2)))
            print(
                f"round {r + 1}: baseline {args.n / rounds[-1]['baseline'][0]:6.2f} img/s, "
                f"product {args.n / rounds[-1]['product'][0]:6.2f} img/s  (wall)",
                flush=True,
            )

        def rate(side: str, index: int) -> float:
            return args.n / min(times[side][index] for times in rounds)

        print()
        for index, clock in ((0, "wall"), (1, "cpu")):
            base_rate, prod_rate = rate("baseline", index), rate("product", index)
            print(
                f"[{clock:4s}] baseline (bare Pillow): {base_rate:7.2f} img/s  "
                f"({1000 / base_rate:5.1f} ms/img, best of {args.rounds})"
            )
            print(
                f"[{clock:4s}] product (media_ingest): {prod_rate:7.2f} img/s  "
                f"({1000 / prod_rate:5.1f} ms/img, best of {args.rounds})"
            )
            print(f"[{clock:4s}] ratio product/baseline: {prod_rate / base_rate:7.2f}")
        wall_b, wall_p = rate("baseline", 0), rate("product", 0)
        cpu_b, cpu_p = rate("baseline", 1), rate("product", 1)
        print(
            f"\nREADME row: | {args.n} | {args.min_mp:g}–{args.max_mp:g} | {connection.vendor} | "
            f"{wall_b:.1f} | {wall_p:.1f} | {wall_p / wall_b:.2f} | {cpu_p / cpu_b:.2f} | "
            f"{os.cpu_count()} cores |"
        )

        if args.profile:
            import cProfile
            import pstats

            profiler = cProfile.Profile()
            product_reset()
            profiler.enable()
            product_round(paths)
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
