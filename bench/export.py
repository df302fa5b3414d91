"""Training-bundle export throughput: the product writer against a bare Pillow loop doing the
same resize and save, and the writer's peak memory at a larger N (streaming).

    .venv/bin/python bench/export.py                      # 2,000 pictures of 1–4 MP, 3 rounds
    .venv/bin/python bench/export.py --n 40 --rounds 2    # smoke run
    .venv/bin/python bench/export.py --rss 100000         # peak RSS of one export of 100k items

Every picture goes to its kohya bucket at 1024 px (SDXL buckets 512–2048, step 64): centre crop,
one LANCZOS resample from the JPEG draft (reducing_gap 3), JPEG quality 95 4:4:4.

  product   `write_bundle` (targets kohya + onetrainer: image files, .caption and .txt per
            image, items.jsonl, configs, report, the file checks with their SHA-256 re-read)
  baseline  a thread pool over every core: open, draft at the resized size, the same box
            resample, the same encoder settings, the file written and hashed; nothing else

Both sides run in the same process, the order alternating per round (bench/rounds.py); the
ratio is taken inside each round and the median reported. The script checks the image files
are byte-identical between the two sides. `--rss N` runs one export of N items (pictures reused
from a pool of 64, ids distinct) in a child process and reports its peak RSS next to one of N/10.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import multiprocessing
import os
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
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seed", type=int, default=1234)
    parser.add_argument("--rss", type=int, default=0, help="instead: peak RSS of one export of N items")
    return parser.parse_args(argv)


def setup() -> Any:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "baggintag.settings.test")
    import django

    django.setup()
    import apps.training.bundle.writer  # noqa: F401 - imported before any timing
    import tests.training.bundle.conftest  # noqa: F401
    from tests.training.bundle import _standins

    logic, standing = _standins.logic()
    if standing:
        print(
            f"  (stand-ins for apps.training.logic.{', '.join(standing)}: the real modules have not landed)"
        )
    return logic


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
    from tests.training.bundle.conftest import POLICY, caption

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


def baseline(paths: list[Path], out: Path, logic: Any) -> list[str]:
    from PIL import Image

    def one(pair: tuple[int, Path]) -> str:
        index, path = pair
        with Image.open(path) as image:
            fit = logic.buckets.kohya_predict(*image.size, resolution=1024, min_=512, max_=2048, step=64)
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

    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        return list(pool.map(one, enumerate(paths)))


def product(paths: list[Path], out: Path, logic: Any) -> list[str]:
    from apps.training.bundle.writer import write_bundle

    write_bundle(make_plan(paths, len(paths), logic), out, logic=logic)
    folder = out / "data" / "bench--all"
    return [hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.glob("*.jpg"))]


def rounds(args: argparse.Namespace, work: Path, logic: Any) -> None:
    from bench.ingest import machine, pictures_generate
    from bench.rounds import cpu_seconds, report

    paths = pictures_generate(
        work / "pictures", args.n, seed=args.seed, min_mp=args.min_mp, max_mp=args.max_mp
    )
    sides = {"product": product, "baseline": baseline}
    totals, same = [], True
    for r in range(args.rounds):
        order = list(sides) if r % 2 == 0 else list(reversed(sides))
        result: dict[str, list[float]] = {}
        hashes = {}
        for name in order:
            out = work / f"{name}-{r}"
            out.mkdir()
            wall, cpu = time.perf_counter(), cpu_seconds()
            hashes[name] = sides[name](paths, out, logic)
            result[name] = [time.perf_counter() - wall, cpu_seconds() - cpu]
            shutil.rmtree(out)
        same &= hashes["product"] == hashes["baseline"]
        totals.append(result)
    print(machine())
    print(
        f"  {args.n} pictures, {args.min_mp}–{args.max_mp} MP, {args.rounds} rounds, {os.cpu_count()} cores"
    )
    labels = {"product": "product write_bundle", "baseline": "bare Pillow loop (draft, all cores)"}
    print("\n".join(report(totals, per=args.n, unit="img", labels=labels)))
    print(f"  image files byte-identical between the sides: {'yes' if same else 'NO'}")


def _rss_child(n: int, pictures: str, out: str, queue: Any) -> None:
    logic = setup()
    from apps.training.bundle.writer import write_bundle

    paths = sorted(Path(pictures).glob("*.jpg"))
    write_bundle(make_plan(paths, n, logic), Path(out), logic=logic)
    queue.put(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)


def rss(args: argparse.Namespace, work: Path) -> None:
    from bench.ingest import pictures_generate

    pictures_generate(work / "pictures", 64, seed=args.seed, min_mp=args.min_mp, max_mp=args.max_mp)
    context = multiprocessing.get_context("spawn")
    for n in (max(1, args.rss // 10), args.rss):
        out = work / f"rss-{n}"
        out.mkdir()
        queue = context.Queue()
        child = context.Process(target=_rss_child, args=(n, str(work / "pictures"), str(out), queue))
        started = time.perf_counter()
        child.start()
        peak = queue.get()
        child.join()
        print(f"  {n:>8} items: peak RSS {peak / 1024:.0f} MiB, {time.perf_counter() - started:.0f} s")
        shutil.rmtree(out)


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
