"""Image ingest throughput: `media_ingest` against loops doing the same work, in one run.

    .venv/bin/python bench/ingest.py --n 40                 # SQLite file in a temp folder
    .venv/bin/python bench/ingest.py --n 40 --min-mp 1 --max-mp 4 --rounds 5
    .venv/bin/python bench/ingest.py --db mysql://user:pass@127.0.0.1:3306/   # MariaDB
    .venv/bin/python bench/ingest.py --n 20 --profile       # pyinstrument one product round

Four sides, interleaved batch by batch (bench/rounds.py): the product one picture at a time
(`media_ingest`), the product batched as bulk jobs ingest (`media_ingest_many`, one thread), a
matched loop (the same work done the fast way, minus the database rows; its outputs are compared
with the product's) and a naive loop (kept as a second line). Ratios are medians of per-round
ratios.

Flags:
  --n N          pictures per round (default 40)
  --min-mp X     smallest picture, megapixels (default 1)
  --max-mp X     largest picture, megapixels (default 4)
  --rounds R     interleaved rounds (default 5)
  --seed S       picture generator seed (default 1234)
  --db sqlite|URL  `sqlite` (default): a throwaway SQLite file; or a MariaDB/MySQL URL whose
                 server gets a database created and dropped by this script: the URL's database
                 name, or `bench_ingest` when it names none
  --profile      after the timed rounds, profile one product round with pyinstrument
  --batch B      pictures per batch of the batched side (default 8)
  --scaling N    instead of the rounds above: a bulk upload job of N pictures (the job's run
                 timed, staging not), one ingest thread pinned to one core against one thread
                 per core on every core, alternating per round
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
import statistics
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
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds (default 5)")
    parser.add_argument("--seed", type=int, default=1234, help="picture generator seed")
    parser.add_argument(
        "--db",
        default="sqlite",
        help="'sqlite' (throwaway file) or a MariaDB URL mysql://user:pass@host:port/",
    )
    parser.add_argument("--profile", action="store_true", help="pyinstrument one extra product round")
    parser.add_argument(
        "--batch", type=int, default=8, help="pictures per batch of the batched side (default 8)"
    )
    parser.add_argument(
        "--scaling",
        type=int,
        default=0,
        metavar="N",
        help="instead: a bulk upload job of N pictures on one core (1 thread) against every core",
    )
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
        name = parts.path.strip("/") or BENCH_DB  # concurrent runs on one server: name your own
        url = urlunsplit((parts.scheme, parts.netloc, f"/{name}", parts.query, ""))
        os.environ["TEST_DATABASE_URL"] = url

    import django

    django.setup()
    from django.db import connection

    if connection.vendor == "mysql":
        with connection._nodb_cursor() as cursor:
            name = connection.settings_dict["NAME"]
            cursor.execute(f"DROP DATABASE IF EXISTS `{name}`")
            cursor.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def django_teardown() -> None:
    from django.db import connection

    if connection.vendor == "mysql":
        connection.close()
        with connection._nodb_cursor() as cursor:
            cursor.execute(f"DROP DATABASE IF EXISTS `{connection.settings_dict['NAME']}`")
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


# --- the three sides ---------------------------------------------------------------------


def naive_once(path: Path, out: Path) -> None:
    """A naive Pillow script (kept as a second line): hash, verify, a full-size decode
    (`load()` before `thumbnail()` turns the JPEG draft off), BICUBIC thumbnail, WebP method 2."""
    from PIL import Image

    data = path.read_bytes()
    hashlib.sha256(data).hexdigest()
    with Image.open(io.BytesIO(data)) as image:
        image.verify()
    with Image.open(io.BytesIO(data)) as image:
        image.load()
        image.thumbnail((THUMB, THUMB))
        image.save(out / f"{path.stem}.webp", "WEBP", quality=80, method=2)


_ORIENTATION = {2: 0, 3: 3, 4: 1, 5: 5, 6: 4, 7: 6, 8: 2}  # EXIF orientation -> Image.Transpose


def phash(image) -> int:
    """The product's 64-bit DCT phash, written out here so the baseline does not move with it:
    32×32 LANCZOS greyscale, separable DCT-II of the 8 lowest frequencies, bits above the median."""
    import operator

    grey = image.convert("L").resize((32, 32), 1)  # 1 = LANCZOS
    pixels = list(grey.get_flattened_data())
    rows = [pixels[i * 32 : (i + 1) * 32] for i in range(32)]
    table = _DCT
    partial = [[sum(map(operator.mul, table[u], row)) for u in range(8)] for row in rows]
    columns = [[partial[y][u] for y in range(32)] for u in range(8)]
    coeffs = [sum(map(operator.mul, table[v], columns[u])) for v in range(8) for u in range(8)]
    median = sorted(coeffs[1:])[31]
    value = 0
    for coefficient in coeffs:
        value = (value << 1) | (coefficient > median)
    return value


_DCT = [[math.cos(math.pi / 32 * (x + 0.5) * u) for x in range(32)] for u in range(8)]


def matched_once(path: Path, store: Path) -> tuple[str, int]:
    """The product's work done the fast way a performance-minded script would, minus the
    database rows: SHA-256, the original stored content-addressed (written once, exclusive
    create), the decompression-bomb limit as an error, a JPEG draft at the thumbnail's own
    size, EXIF orientation, a 256 px LANCZOS thumbnail (reducing_gap 2), WebP q80 method 0
    stored content-addressed, and the same DCT phash of the thumbnail. Returns (sha256, phash)."""
    import warnings

    from PIL import Image

    data = path.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    folder = f"{digest[:2]}/{digest[2:4]}"
    original = store / "originals" / folder / f"{digest}.jpg"
    original.parent.mkdir(parents=True, exist_ok=True)
    with original.open("xb") as handle:
        handle.write(data)
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        image = Image.open(io.BytesIO(data), formats=["JPEG"])
    with image:
        width, height = image.size
        own = (THUMB, max(1, math.ceil(THUMB * height / width)))
        if height > width:
            own = (max(1, math.ceil(THUMB * width / height)), THUMB)
        image.draft("RGB", own)
        orientation = image.getexif().get(0x0112, 1)
        thumb = image if image.mode in ("RGB", "RGBA") else image.convert("RGB")
        thumb.thumbnail((THUMB, THUMB), Image.Resampling.LANCZOS, reducing_gap=2.0)
        if orientation in _ORIENTATION:
            thumb = thumb.transpose(Image.Transpose(_ORIENTATION[orientation]))
        buffer = io.BytesIO()
        thumb.save(buffer, "WEBP", quality=80, method=0)
        target = store / "thumbnails" / folder / f"{digest}.webp"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(buffer.getvalue())
        return digest, phash(thumb)


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


def batch_copies(paths: list[Path], folder: Path) -> list[Path]:
    """The same pictures with one byte after the JPEG's end marker: the same pixels and work,
    other SHA-256s, so the batched side stores new items beside the one-at-a-time side's."""
    folder.mkdir(parents=True, exist_ok=True)
    copies = []
    for path in paths:
        copy = folder / path.name
        copy.write_bytes(path.read_bytes() + b"\0")
        copies.append(copy)
    return copies


def batch_once(paths: list[Path]) -> None:
    """The bulk job's path without the job: `media_ingest_many` on one batch, one thread."""
    from apps.media.services import Origin, metadata_clean
    from apps.media.services.batch import BatchInput, media_ingest_many

    inputs = [
        BatchInput(
            open=(lambda p=path: p.open("rb")),
            origin=Origin(kind="upload", original_filename=path.name),
            metadata=metadata_clean(),
        )
        for path in paths
    ]
    for outcome in media_ingest_many(inputs=inputs, added_by=None):
        if outcome.result is None or outcome.result.duplicate:
            raise SystemExit(
                f"batched side: {outcome.error or 'a duplicate'}: the round is not measuring ingest"
            )


def product_check(count: int) -> None:
    from apps.media.models import MediaItem

    stored = MediaItem.objects.count()
    if stored != count:
        raise SystemExit(f"expected {count} items after the round, found {stored}")


LABELS = {
    "product": "product (media_ingest)",
    "batch": "product, batched (bulk jobs' media_ingest_many)",
    "matched": "matched loop (same work, no rows)",
    "naive": "naive loop (load() first, no draft, method 2)",
}


def timed_round(
    chunks: list[tuple[list[Path], list[Path]]], work: Path, *, round_index: int
) -> dict[str, list[float]]:
    """The sides over the same pictures, interleaved batch by batch (bench/rounds.py); each
    round starts from an empty library and empty baseline folders. A chunk is (pictures, their
    copies for the batched side)."""
    from bench.rounds import interleaved_round

    naive_out, store = work / "naive-out", work / "matched-store"
    for folder in (naive_out, store):
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
    product_reset()
    sides = {
        "product": lambda chunk: [product_once(path) for path in chunk[0]],
        "batch": lambda chunk: batch_once(chunk[1]),
        "matched": lambda chunk: [matched_once(path, store) for path in chunk[0]],
        "naive": lambda chunk: [naive_once(path, naive_out) for path in chunk[0]],
    }
    totals = interleaved_round(chunks, sides, round_index=round_index)
    product_check(2 * sum(len(chunk[0]) for chunk in chunks))
    return totals


def chunked(paths: list[Path], copies: list[Path], size: int) -> list[tuple[list[Path], list[Path]]]:
    return [(paths[i : i + size], copies[i : i + size]) for i in range(0, len(paths), size)]


def outputs_compare(paths: list[Path], work: Path) -> str:
    """The matched loop's outputs against the product's: hashes, stored bytes and phash."""
    from django.conf import settings

    from apps.media.models import MediaItem

    media, store = Path(settings.MEDIA_ROOT), work / "matched-store"
    same = {"sha256": 0, "original": 0, "thumbnail": 0, "phash": 0}
    for path in paths:
        digest, hashed = matched_once(path, work / "compare-store")
        item = MediaItem.objects.get(sha256=digest)
        same["sha256"] += 1
        same["original"] += (media / item.storage_key).read_bytes() == path.read_bytes()
        thumb = store / "thumbnails" / digest[:2] / digest[2:4] / f"{digest}.webp"
        same["thumbnail"] += (media / item.thumbnail_key).read_bytes() == thumb.read_bytes()
        same["phash"] += item.phash == (hashed - (1 << 64) if hashed >= 1 << 63 else hashed)  # stored signed
    shutil.rmtree(work / "compare-store", ignore_errors=True)
    return "outputs : matched loop vs product, identical: " + ", ".join(
        f"{key} {count}/{len(paths)}" for key, count in same.items()
    )


def product_round(paths: list[Path]) -> float:
    product_reset()
    start = time.perf_counter()
    for path in paths:
        product_once(path)
    elapsed = time.perf_counter() - start
    product_check(len(paths))
    return elapsed


def scaling_run(paths: list[Path], threads: int) -> tuple[float, float]:
    """One bulk upload job of `paths` (staged first, untimed) with `threads` ingest threads,
    this process pinned to `threads` CPUs; (wall, CPU) seconds of the job's run."""
    from django.core.files import File
    from django.test import override_settings

    from apps.jobs.models import Job
    from apps.media.services import media_upload_bulk_run, media_upload_bulk_start
    from bench.rounds import cpu_seconds

    product_reset()
    handles = [path.open("rb") for path in paths]
    try:
        job = media_upload_bulk_start(
            files=[File(h, name=p.name) for h, p in zip(handles, paths, strict=True)]
        )
    finally:
        for handle in handles:
            handle.close()
    everything = os.sched_getaffinity(0)
    os.sched_setaffinity(0, sorted(everything)[:threads])
    try:
        with override_settings(BAGGINTAG_INGEST_THREADS=threads):
            wall, cpu = time.perf_counter(), cpu_seconds()
            media_upload_bulk_run(job_id=job.pk)
            wall, cpu = time.perf_counter() - wall, cpu_seconds() - cpu
    finally:
        os.sched_setaffinity(0, everything)
    job.refresh_from_db()
    if job.status != Job.Status.SUCCEEDED or job.counts != {"created": len(paths)}:
        raise SystemExit(f"scaling run: job ended {job.status} {job.counts}")
    return wall, cpu


def scaling(args: argparse.Namespace, work: Path) -> None:
    """A bulk upload of N pictures on one core with one thread against every core, in
    alternating order per round; the ratio is taken inside each round."""
    cores = len(os.sched_getaffinity(0))
    print(f"pictures: generating {args.scaling} JPEGs of {args.min_mp:g}–{args.max_mp:g} MP …", flush=True)
    paths = pictures_generate(
        work / "in", args.scaling, seed=args.seed, min_mp=args.min_mp, max_mp=args.max_mp
    )
    scaling_run(paths[:4], 1)  # warm-up
    speedups = []
    for r in range(args.rounds):
        order = [1, cores] if r % 2 == 0 else [cores, 1]
        times = {threads: scaling_run(paths, threads) for threads in order}
        speedups.append(times[1][0] / times[cores][0])
        print(
            f"round {r + 1}: 1 core {times[1][0]:6.2f} s wall ({times[1][1]:6.2f} s CPU), "
            f"{cores} cores {times[cores][0]:6.2f} s wall ({times[cores][1]:6.2f} s CPU): "
            f"speed-up {speedups[-1]:.2f}; load {os.getloadavg()[0]:.1f}",
            flush=True,
        )
    print(
        f"\nbulk upload of {args.scaling} pictures, {cores} cores against 1: median speed-up "
        f"{statistics.median(speedups):.2f} ({min(speedups):.2f}–{max(speedups):.2f}), {args.rounds} rounds"
    )


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
        if args.scaling:
            scaling(args, work)
            return 0
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

        copies = batch_copies(paths, work / "in-batch")
        warm_copies = batch_copies(warm, work / "warm-batch")
        chunks = chunked(paths, copies, args.batch)
        timed_round(chunked(warm, warm_copies, 2), work, round_index=0)  # warm-up: imports, codecs, DB

        from bench.rounds import report

        rounds: list[dict[str, list[float]]] = []
        for r in range(args.rounds):
            rounds.append(timed_round(chunks, work, round_index=r))
            print(
                f"round {r + 1}: "
                + ", ".join(f"{side} {args.n / rounds[-1][side][0]:6.2f}" for side in LABELS)
                + " img/s (wall); product/matched "
                + f"{rounds[-1]['matched'][0] / rounds[-1]['product'][0]:.2f}",
                flush=True,
            )
        print(outputs_compare(paths, work))
        print(f"\nmedians over {args.rounds} interleaved rounds of {args.n} pictures:")
        print("\n".join(report(rounds, per=args.n, unit="img", labels=LABELS)))
        batched = [r["matched"][0] / r["batch"][0] for r in rounds]
        batched_cpu = [r["matched"][1] / r["batch"][1] for r in rounds]
        print(
            f"  ratio batched / matched loop: wall {statistics.median(batched):.2f} "
            f"({min(batched):.2f}–{max(batched):.2f}), CPU {statistics.median(batched_cpu):.2f} "
            f"({min(batched_cpu):.2f}–{max(batched_cpu):.2f})"
        )

        if args.profile:
            from pyinstrument import Profiler

            product_reset()
            profiler = Profiler(interval=0.0005)
            profiler.start()
            product_round(paths)
            for chunk in chunks:
                batch_once(chunk[1])
            profiler.stop()
            print("\nproduct round, one at a time then batched, pyinstrument:")
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
