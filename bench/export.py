"""Training-bundle export throughput: the product writer against a bare Pillow loop doing the
same resize and save, and the writer's peak memory at a larger N (streaming).

    .venv/bin/python bench/export.py                      # 2,000 pictures of 1–4 MP, 3 rounds
    .venv/bin/python bench/export.py --n 40 --rounds 2    # smoke run
    .venv/bin/python bench/export.py --rss 100000         # peak RSS of one export of 100k items

Every picture goes to its kohya bucket at 1024 px (SDXL buckets 512–2048, step 64): centre crop,
one LANCZOS resample from the JPEG draft (reducing_gap 3), JPEG quality 95 4:4:4.

  product   `write_bundle` (targets kohya + onetrainer: image files, .caption and .txt per
            image, items.jsonl, configs, report, the file checks with their SHA-256 re-read)
  loop      the goal's baseline, a bare Pillow loop: one picture after another, open, draft at
            the resized size, the same box resample, the same encoder settings, the file written
            and hashed; a picture smaller than its bucket copied as it is (never upscaled, as the
            product does); nothing else
  baseline  the same loop body on a thread pool over every core: the stricter peer, doing the
            image work exactly as the product does with none of the export's other work

The product does the whole export a real one does (real caption renderers, 30-tag captions
with a description), so its ratios are strict: it carries the caption, manifest and check work the
loops do not; that work is also timed alone and printed (ms CPU/item). Inputs are generated
once and kept under bench/out/ (gitignored, see `cached_pictures`).

The three sides run in the same process, the order rotating per round (bench/rounds.py); the
ratios are taken inside each round and the median reported, with the geometric mean over a
multiple of three rounds (each side first equally often). The
script checks the image files are byte-identical between the three sides. `--rss N` runs one
export of N items (64 distinct 64×64 JPEGs reused, ids and sha256 distinct per item; they are
copied, not resized) in a fresh child process, printing its peak RSS at N/10, N/2 and N items
and after the file checks, then streams that bundle's zip (zipstream) to /dev/null in another
child and prints its peak RSS.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import math
import multiprocessing
import os
import random
import resource
import shutil
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=2000, help="pictures (default 2000)")
    parser.add_argument("--min-mp", type=float, default=1.0)
    parser.add_argument("--max-mp", type=float, default=4.0)
    parser.add_argument(
        "--rounds", type=int, default=3, help="a multiple of 3: each side first equally often (default 3)"
    )
    parser.add_argument("--seed", type=int, default=1234)
    parser.add_argument("--rss", type=int, default=0, help="instead: peak RSS of one export of N items")
    return parser.parse_args(argv)


def setup() -> Any:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "baggintag.settings.test")
    import django

    django.setup()
    import apps.training.bundle.writer  # noqa: F401 - imported before any timing
    import tests.training.bundle.conftest  # noqa: F401
    from apps.training.bundle.context import load_logic

    logic = load_logic()  # the real logic modules (the stand-ins were removed with the tests')
    # Warm-up outside the clock: the CLIP token tables load once per process (about 2 s of CPU
    # here), as in a long-running export worker.
    from tests.training.bundle.conftest import POLICY

    logic.captions.render(caption("i000000000000", 0), POLICY, "neutral", seed=1)
    return logic


def caption(item_id: str, n: int) -> Any:
    """A caption like a tagged picture's: trigger, character, 28 general tags (some shared by
    every picture, some not), a quality tag and a one-line description."""
    from apps.training.plan import CaptionEntry, ItemCaption

    entries = [
        CaptionEntry("mychar", "trigger", "t:mychar"),
        CaptionEntry("1girl", "character", "t:1girl"),
        CaptionEntry("smile, {wink}", "general", "g:smile, {wink}", members=("smile", "{wink}")),
    ]
    for k in range(27):
        text = f"general tag {k}" if k < 12 else f"tag {k} variant {n % (k + 3)}"
        entries.append(CaptionEntry(text, "general", f"t:{text}", rank=-k / 30))
    entries.append(CaptionEntry("masterpiece", "quality", "t:masterpiece"))
    description = f"a girl with long hair standing in a sunlit field, picture {n}"
    return ItemCaption(item_id, tuple(entries), {"short": (description,)})


def make_plan(paths: list[Path], n: int, logic: Any) -> Any:
    from apps.training.plan import (
        BaseModelSpec,
        ExportSettings,
        ImagePolicy,
        Lineage,
        MethodSpec,
        Partition,
        Plan,
        PlanItem,
    )
    from tests.training.bundle.conftest import POLICY

    def items() -> Any:
        for i in range(n):
            path = paths[i % len(paths)]
            item_id = f"i{i:012x}"
            yield PlanItem(
                id=item_id,
                dataset="bench",
                partition="bench--all",
                sha256=f"{i:064x}",
                storage_key=str(path),
                width=0,
                height=0,
                format="JPEG",
                mode="RGB",
                has_alpha=False,
                caption=caption(item_id, i),
                lineage=Lineage(media_id=i + 1, original_name=path.name),
            )

    return Plan(
        session_id="sess-bench",
        session_name="bench",
        session_version=1,
        created="2026-12-07T00:00:00Z",
        seed=1,
        app_version="bench",
        base_model=BaseModelSpec(
            family="sdxl",
            profile="bench",
            resolution=1024,
            bucket_min=512,
            bucket_max=2048,
            onetrainer_quantum=64,
        ),
        method=MethodSpec(),
        image_policy=ImagePolicy(resolution=1024, bucket_min=512, bucket_max=2048, bucket_step=64),
        caption_policy=POLICY,
        datasets=[],
        partitions=[Partition("bench--all", "bench", repeats=1)],
        targets=["kohya", "onetrainer"],
        export=ExportSettings(target_root="/srv/bench", images="bucket"),
        items=items,
        open_original=lambda key: open(key, "rb"),
        item_count=n,
    )


def baseline(paths: list[Path], out: Path, logic: Any, *, workers: int | None = None) -> list[str]:
    """The same resize and save as the product, the fast idiomatic way: a thread pool over every
    core (`workers` None) or, with workers=1, the bare loop of the issue's goal (draft decoding,
    one picture after another)."""
    from PIL import Image

    def one(pair: tuple[int, Path]) -> str:
        index, path = pair
        with Image.open(path) as image:
            fit = logic.buckets.kohya_predict(*image.size, resolution=1024, min_=512, max_=2048, step=64)
            if fit.upscale:  # never upscaled: the file as it is (what the product writes)
                data = path.read_bytes()
                (out / f"i{index:012x}.jpg").write_bytes(data)
                return hashlib.sha256(data).hexdigest()
            (bw, bh), (rw, rh) = fit.bucket, fit.resized
            image.draft("RGB", (rw, rh))
            sx, sy = image.size[0] / rw, image.size[1] / rh
            x0, y0 = (rw - bw) // 2, (rh - bh) // 2
            box = (x0 * sx, y0 * sy, (x0 + bw) * sx, (y0 + bh) * sy)
            small = image.resize((bw, bh), Image.Resampling.LANCZOS, box=box, reducing_gap=3.0)
        buffer = io.BytesIO()
        small.save(buffer, "JPEG", quality=95, subsampling=0, optimize=False)
        data = buffer.getvalue()
        (out / f"i{index:012x}.jpg").write_bytes(data)
        return hashlib.sha256(data).hexdigest()

    if workers == 1:
        return [one(pair) for pair in enumerate(paths)]
    with ThreadPoolExecutor(max_workers=workers or os.cpu_count() or 1) as pool:
        return list(pool.map(one, enumerate(paths)))


def loop(paths: list[Path], out: Path, logic: Any) -> list[str]:
    return baseline(paths, out, logic, workers=1)


def product(paths: list[Path], out: Path, logic: Any) -> None:
    from apps.training.bundle.writer import write_bundle

    write_bundle(make_plan(paths, len(paths), logic), out, logic=logic)


def product_hashes(out: Path) -> list[str]:
    """The product's image files, hashed after the clock stopped (the writer hashed them itself)."""
    folder = out / "data" / "bench--all"
    return [hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.glob("*.jpg"))]


def caption_work(n: int, logic: Any) -> float:
    """CPU ms per item of the caption rendering a kohya + OneTrainer export does per item (the
    .caption and .txt renderings and the keep entries), on one thread, files not written."""
    from tests.training.bundle.conftest import POLICY

    started = time.process_time()
    for i in range(n):
        item = caption(f"i{i:012x}", i)
        logic.captions.render(item, POLICY, "kohya", seed=1)
        logic.captions.render(item, POLICY, "neutral", seed=1)
        logic.captions.keep_entries(item, POLICY)
    return (time.process_time() - started) / n * 1000


CACHE = Path(__file__).resolve().parent / "out"  # gitignored


MASTER = 2736  # master photo side: every 1–4 MP crop of the listed aspect ratios fits


def _masters_part(folder: str, seeds: list[int]) -> None:
    from bench.ingest import photo

    for seed in seeds:
        path = Path(folder) / f"master-{seed}.png"
        if not path.exists():
            photo(random.Random(f"export-master-{seed}"), MASTER, MASTER).save(path, compress_level=1)


def _crops_part(folder: str, jobs: list[tuple[int, int, float, float]]) -> None:
    """Pictures cut from the masters: a window of the wanted size at a seeded place, saved as a
    camera would (JPEG q90 with EXIF)."""
    from PIL import Image

    from bench.ingest import _ASPECTS

    masters: dict[int, Image.Image] = {}
    for index, seed, min_mp, max_mp in jobs:
        rng = random.Random(f"export-picture-{seed}-{index}")
        master_seed = rng.randrange(MASTERS)
        if master_seed not in masters:
            masters[master_seed] = Image.open(Path(folder) / f"master-{master_seed}.png").convert("RGB")
        aw, ah = rng.choice(_ASPECTS)
        pixels = rng.uniform(min_mp, max_mp) * 1_000_000
        width = min(MASTER, max(16, round(math.sqrt(pixels * aw / ah))))
        height = min(MASTER, max(16, round(width * ah / aw)))
        x, y = rng.randrange(MASTER - width + 1), rng.randrange(MASTER - height + 1)
        picture = masters[master_seed].crop((x, y, x + width, y + height))
        if rng.random() < 0.5:
            picture = picture.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        exif = Image.Exif()
        exif[0x010F] = "Bench"
        exif[0x0110] = f"Synthetic {index}"
        exif[0x0112] = 1
        picture.save(Path(folder) / f"photo-{index:05d}.jpg", "JPEG", quality=90, exif=exif)


MASTERS = 24


def _parallel(target: Any, chunks: list[Any], folder: Path) -> None:
    context = multiprocessing.get_context("spawn")
    children = [context.Process(target=target, args=(str(folder), chunk)) for chunk in chunks if chunk]
    for child in children:
        child.start()
    for child in children:
        child.join()
        if child.exitcode:
            raise SystemExit(f"generating the pictures failed ({child.exitcode})")


def cached_pictures(n: int, *, seed: int, min_mp: float, max_mp: float, parts: int = 2) -> list[Path]:
    """N distinct JPEGs of min_mp–max_mp megapixels, kept under bench/out/ (gitignored) between
    runs. Each is a seeded window (size, aspect ratio, place, maybe mirrored) of one of 24
    generated 7.5-MP photos (bench.ingest.photo: colour fields, shapes, texture, grain): making
    2,000 full photos takes most of an hour on the 2-core machine, cutting them a few minutes."""
    folder = CACHE / f"export-pictures-{seed}-{min_mp}-{max_mp}"
    done = folder / "COMPLETE"  # how many pictures the folder holds (pictures 0 … count-1)
    have = int(done.read_text()) if done.exists() else 0
    if have < n:
        masters = CACHE / "export-masters"
        masters.mkdir(parents=True, exist_ok=True)
        _parallel(_masters_part, [list(range(MASTERS))[k::parts] for k in range(parts)], masters)
        folder.mkdir(parents=True, exist_ok=True)
        for path in masters.glob("master-*.png"):
            if not (folder / path.name).exists():
                os.link(path, folder / path.name)
        jobs = [(i, seed, min_mp, max_mp) for i in range(have, n)]
        _parallel(_crops_part, [jobs[k::parts] for k in range(parts)], folder)
        for path in folder.glob("master-*.png"):
            path.unlink()
        done.write_text(f"{n}\n")
    paths = sorted(folder.glob("*.jpg"))[:n]
    assert len(paths) == n, f"{folder}: {len(paths)} pictures, expected {n}"
    return paths


def rounds(args: argparse.Namespace, work: Path, logic: Any) -> None:
    from bench.ingest import machine
    from bench.rounds import cpu_seconds, report, rotated

    paths = cached_pictures(args.n, seed=args.seed, min_mp=args.min_mp, max_mp=args.max_mp)
    sides = {"product": product, "baseline": baseline, "loop": loop}
    totals, same = [], True
    for r in range(args.rounds):
        order = rotated(list(sides), r)
        result: dict[str, list[float]] = {}
        hashes = {}
        for name in order:
            out = work / f"{name}-{r}"
            out.mkdir()
            wall, cpu = time.perf_counter(), cpu_seconds()
            made = sides[name](paths, out, logic)
            result[name] = [time.perf_counter() - wall, cpu_seconds() - cpu]
            hashes[name] = made if made is not None else product_hashes(out)
            shutil.rmtree(out)
        same &= hashes["product"] == hashes["baseline"] == hashes["loop"] and len(hashes["product"]) == args.n
        print(
            f"  round {r + 1} ({', '.join(order)}): product {result['product'][0]:.1f} s, "
            f"all-cores loop {result['baseline'][0]:.1f} s, one-thread loop {result['loop'][0]:.1f} s wall; "
            f"ratios {result['baseline'][0] / result['product'][0]:.3f} and "
            f"{result['loop'][0] / result['product'][0]:.3f}; load {os.getloadavg()[0]:.1f}",
            flush=True,
        )
        totals.append(result)
    print(machine())
    print(
        f"  {args.n} pictures, {args.min_mp}–{args.max_mp} MP, {args.rounds} rounds, {os.cpu_count()} cores"
    )
    labels = {
        "product": "product write_bundle",
        "baseline": "Pillow loop (draft, thread pool on all cores)",
        "loop": "bare Pillow loop (draft, one thread: the goal's baseline)",
    }
    print("\n".join(report(totals, per=args.n, unit="img", labels=labels)))
    # On the shared machine the load moves within a round (2026-12-07, 2,000 pictures: 0.83 with
    # the product first, 1.12 with it second), so an odd number of rounds can tilt the median:
    # the geometric mean over rounds with each side first equally often is printed too.
    for name in ("baseline", "loop"):
        ratios = [r[name][0] / r["product"][0] for r in totals]
        full = len(ratios) // 3 * 3
        if full:
            balanced = math.prod(ratios[:full]) ** (1 / full)
            print(
                f"  order-balanced wall ratio against {labels[name]} "
                f"(geometric mean of the first {full} rounds): {balanced:.2f}"
            )
    print(f"  image files byte-identical between the three sides: {'yes' if same else 'NO'}")
    print(
        "  caption rendering alone (kohya + neutral, one thread): "
        f"{caption_work(args.n, logic):.2f} ms CPU/item"
    )
    print(f"  load average at the end: {', '.join(f'{v:.1f}' for v in os.getloadavg())}")


def small_pictures(count: int = 64) -> list[Path]:
    """`count` distinct 64×64 JPEGs (cached under bench/out/): below the smallest bucket, so the
    writer copies them as they are and the RSS run measures the per-item bookkeeping."""
    from PIL import Image

    folder = CACHE / f"export-small-{count}"
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        path = folder / f"small-{i:03d}.jpg"
        if not path.exists():
            rng = random.Random(f"export-small-{i}")
            image = Image.new("RGB", (64, 64), tuple(rng.randrange(256) for _ in range(3)))
            image.putpixel((i % 64, i // 64), (255, 255, 255))
            image.save(path, "JPEG", quality=90)
    return sorted(folder.glob("small-*.jpg"))[:count]


def _peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _rss_child(n: int, pictures: list[str], out: str) -> None:
    logic = setup()
    from apps.training.bundle.writer import write_bundle

    marks = {n // 10, n // 2, n}
    started = time.perf_counter()
    print(f"    after Django setup: peak RSS {_peak_mib():.0f} MiB", flush=True)

    def progress(done: int, total: int) -> None:
        if done in marks:
            print(
                f"    {done:>8} items written: peak RSS {_peak_mib():.0f} MiB, "
                f"{time.perf_counter() - started:.0f} s, load {os.getloadavg()[0]:.1f}",
                flush=True,
            )

    result = write_bundle(
        make_plan([Path(p) for p in pictures], n, logic), Path(out), logic=logic, progress=progress
    )
    print(
        f"    {n:>8} items, bundle done ({result.file_count} files, configs and file checks included): "
        f"peak RSS {_peak_mib():.0f} MiB, {time.perf_counter() - started:.0f} s",
        flush=True,
    )


def _zip_child(out: str) -> None:
    from apps.training.bundle.zipstream import zip_stream

    started = time.perf_counter()
    print(f"    before streaming: peak RSS {_peak_mib():.0f} MiB", flush=True)
    size = chunks = 0
    with open(os.devnull, "wb") as sink:
        for chunk in zip_stream(Path(out), prefix="bench/"):
            sink.write(chunk)
            size += len(chunk)
            chunks += 1
            if chunks % 100_000 == 0:
                print(f"    {size / 2**20:8.0f} MiB streamed: peak RSS {_peak_mib():.0f} MiB", flush=True)
    print(
        f"    zip streamed to /dev/null: {size / 2**20:.0f} MiB, peak RSS {_peak_mib():.0f} MiB, "
        f"{time.perf_counter() - started:.0f} s",
        flush=True,
    )


def rss(args: argparse.Namespace, work: Path) -> None:
    """One export of N small items in a fresh child process, its peak RSS sampled at N/10, N/2
    and N items written and after the file checks; then the zip of that bundle streamed to
    /dev/null in another fresh child (zipstream)."""
    pictures = [str(p) for p in small_pictures()]
    context = multiprocessing.get_context("spawn")
    out = work / "rss"
    out.mkdir()
    print(f"  export of {args.rss} items (64 distinct 64×64 JPEGs, ids and sha256 distinct per item)")
    for target, target_args in ((_rss_child, (args.rss, pictures, str(out))), (_zip_child, (str(out),))):
        child = context.Process(target=target, args=target_args)
        child.start()
        child.join()
        if child.exitcode:
            raise SystemExit(f"the child failed ({child.exitcode})")
    print(f"  load average at the end: {', '.join(f'{v:.1f}' for v in os.getloadavg())}")


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="bench-export-"))
    try:
        if args.rss:
            rss(args, work)
        else:
            rounds(args, work, setup())
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
