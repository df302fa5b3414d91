"""Frame capture throughput: a frames job against the same capture done by a bare ffmpeg, in one run.

    .venv/bin/python bench/frames.py                        # 60 s 720p clip, SQLite in a temp folder
    .venv/bin/python bench/frames.py --long                 # memory at 30 s and 120 s (not 30 s and 60 s)
    .venv/bin/python bench/frames.py --seconds 30 --rounds 5 --source mandelbrot
    .venv/bin/python bench/frames.py --profile              # pyinstrument one product round

The clip is made with the bundled ffmpeg (testsrc2 or mandelbrot, both moving; H.264
`-preset veryfast`, yuv420p, AAC sine audio) and ingested. Then, per round:

  product   `media_frames_extract_start(video=, request={"mode": "interval", "interval": 1.0})`
            and `media_frames_extract_run(job_id=)` in this process, as a worker runs it: one
            streaming ffmpeg (select + showinfo, PNGs at zlib level 3 with adaptive filters on
            a pipe, the same frames shrunk to their 256 px thumbnails as raw RGB on a second
            pipe for the thumbnail and perceptual hash), items, VideoFrame rows, tag
            inheritance, job records, stored in batches.
  baseline  the service's own ffmpeg command (`-protocol_whitelist file -loglevel info -i
            clip.mp4 -map 0:v:0 -an -sn -dn -vf "select='<the service's expression>',showinfo"
            -fps_mode passthrough -pix_fmt rgb24 -c:v png -compression_level 3 -pred mixed`),
            writing out/%04d.png instead of a pipe: the same decode and the same frames (first
            frame at or after each multiple of the interval), PNGs at the same settings.

The two alternate order each round; the median of the per-round ratios counts. After the rounds, the
product's frames are compared with ffmpeg's pixel by pixel. Wall and CPU (this process plus
its ffmpeg children) are both reported: on a small shared machine the wall clock follows the
other load, the CPU figure much less.

Memory: a child process (this script with an internal flag) runs one extraction on a short
and a long clip; it prints the Python process's peak RSS during the run (peak reset with
/proc/self/clear_refs just before it) and ffmpeg's own peak RSS (RUSAGE_CHILDREN), next to
the bare ffmpeg's peak at the same lengths (wait4).

Flags:
  --seconds S    clip length for the timed rounds (default 60)
  --size WxH     frame size (default 1280x720)
  --fps F        frame rate (default 25)
  --source NAME  testsrc2 (default) or mandelbrot
  --interval I   capture interval in seconds (default 1.0)
  --level L      the baseline's PNG compression level (default 3, the service's)
  --rounds R     timed rounds (default 5); the median per-round ratio counts
  --long         measure memory at 30 s and 120 s (default: 30 s and the --seconds clip)
  --no-memory    skip the memory measurement
  --db sqlite|URL  as in bench/ingest.py (a MariaDB server gets a throwaway database)
  --profile      after the timed rounds, profile one product round and print the top entries
  --keep         keep the temp folder (clips, frames, database, media) and print its path

See bench/README.md for what is measured and the figures.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.ingest import django_setup, django_teardown, machine

MEMORY_SHORT = 30.0
MEMORY_LONG = 120.0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="clip length in s (default 60)")
    parser.add_argument("--size", default="1280x720", help="frame size (default 1280x720)")
    parser.add_argument("--fps", type=int, default=25, help="frame rate (default 25)")
    parser.add_argument(
        "--source",
        choices=("testsrc2", "mandelbrot"),
        default="testsrc2",
        help="moving test picture (default testsrc2)",
    )
    parser.add_argument("--interval", type=float, default=1.0, help="capture interval in s (default 1)")
    parser.add_argument("--level", type=int, default=3, help="baseline PNG compression level (default 3)")
    parser.add_argument("--rounds", type=int, default=5, help="timed rounds (default 5)")
    parser.add_argument("--long", action="store_true", help="memory at 30 s and 120 s")
    parser.add_argument("--no-memory", action="store_true", help="skip the memory measurement")
    parser.add_argument(
        "--db",
        default="sqlite",
        help="'sqlite' (throwaway file) or a MariaDB URL mysql://user:pass@host:port/",
    )
    parser.add_argument("--profile", action="store_true", help="pyinstrument one extra product round")
    parser.add_argument("--keep", action="store_true", help="keep the temp folder")
    parser.add_argument("--memory-child", type=int, metavar="VIDEO_ID", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.seconds < 2 or args.rounds < 1 or args.interval <= 0 or args.fps < 1:
        parser.error("need --seconds ≥ 2, --rounds ≥ 1, --interval > 0 and --fps ≥ 1")
    try:
        args.width, args.height = (int(v) for v in args.size.split("x"))
    except ValueError:
        parser.error("--size must look like 1280x720")
    return args


# --- the clip ---------------------------------------------------------------------------


def ffmpeg() -> str:
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


def ffmpeg_version() -> str:
    out = subprocess.run(
        [ffmpeg(), "-hide_banner", "-version"], capture_output=True, text=True, check=True
    ).stdout
    return out.splitlines()[0].removeprefix("ffmpeg version ").split(" Copyright")[0]


def clip_make(folder: Path, args: argparse.Namespace, seconds: float) -> Path:
    """A moving H.264 clip with a sine soundtrack, as a camera or screen recorder makes them."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{args.source}-{seconds:g}s-{args.size}.mp4"
    picture = (
        f"testsrc2=size={args.size}:rate={args.fps}"
        if args.source == "testsrc2"
        else f"mandelbrot=size={args.size}:rate={args.fps}"
    )
    subprocess.run(
        [
            ffmpeg(),
            "-nostdin",
            "-hide_banner",
            "-loglevel",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-t",
            f"{seconds:g}",
            "-i",
            picture,
            "-f",
            "lavfi",
            "-t",
            f"{seconds:g}",
            "-i",
            "sine=frequency=440",
            "-c:v",
            "libx264",
            "-preset",
            "veryfast",
            "-pix_fmt",
            "yuv420p",
            "-c:a",
            "aac",
            "-shortest",
            "-f",
            "mp4",
            str(path),
        ],
        check=True,
        capture_output=True,
    )
    return path


def clip_ingest(path: Path):
    from apps.media.services import Origin, media_ingest, metadata_clean

    with path.open("rb") as stream:
        item = media_ingest(
            stream=stream,
            origin=Origin(kind="upload", original_filename=path.name),
            metadata=metadata_clean(),
            added_by=None,
        ).item
    if item.kind != "video":
        raise SystemExit(f"{path.name} was stored as {item.kind}, not video")
    return item


def request(args: argparse.Namespace) -> dict:
    return {"mode": "interval", "interval": args.interval}


def expected_frames(video, interval: float) -> int:
    """Multiples of the interval before the last frame's time (each has a frame at or after it)."""
    last = (video.duration_ms or 0) / 1000 - 1000 / video.fps_milli
    n = 0
    while n * interval <= last + 1e-9:
        n += 1
    return n


# --- the two sides ----------------------------------------------------------------------


def select_filter(video, args: argparse.Namespace) -> str:
    """The `select` the service builds for this request (same module function, same text)."""
    from apps.media.services import frame_stream, frames

    params = frames.frames_request_clean(video=video, raw=request(args))
    expression = frame_stream.select_expression(params, (video.duration_ms or 0) / 1000)
    return f"select='{expression}'"


def baseline_command(path: Path, out: Path, vf: str, level: int) -> list[str]:
    """The service's own ffmpeg command (apps/media/services/frame_stream.py `stream_frames`:
    protocol whitelist, video stream only, select + showinfo at log level info, passthrough
    timing, rgb24 PNGs at the same zlib level and row filters), writing numbered files instead
    of a pipe. The service's command also writes each frame's thumbnail (scaled by ffmpeg) as
    raw RGB to a second pipe (its own cost, counted on the product's side)."""
    return [
        ffmpeg(),
        "-hide_banner",
        "-nostdin",
        "-protocol_whitelist",
        "file",
        "-loglevel",
        "info",
        "-y",
        "-i",
        str(path),
        "-map",
        "0:v:0",
        "-an",
        "-sn",
        "-dn",
        "-vf",
        f"{vf},showinfo",
        "-fps_mode",
        "passthrough",
        "-pix_fmt",
        "rgb24",
        "-c:v",
        "png",
        "-compression_level",
        str(level),
        "-pred",
        "mixed",
        str(out / "%04d.png"),
    ]


def baseline_once(path: Path, out: Path, vf: str, level: int) -> int:
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    subprocess.run(baseline_command(path, out, vf, level), check=True, capture_output=True)
    return len(list(out.glob("*.png")))


def product_reset(video) -> None:
    """Delete the video's frames (items, captures, files) so the next round captures them anew."""
    from django.conf import settings

    from apps.media.models import MediaItem

    frames = MediaItem.objects.filter(video=video, kind="frame")
    keys = [k for pair in frames.values_list("storage_key", "thumbnail_key") for k in pair if k]
    frames.delete()
    media = Path(settings.MEDIA_ROOT)
    for key in keys:
        (media / key).unlink(missing_ok=True)


def product_once(video, args: argparse.Namespace) -> int:
    from apps.jobs.models import Job
    from apps.media.models import VideoFrame
    from apps.media.services import frames

    job = frames.media_frames_extract_start(video=video, request=request(args))
    frames.media_frames_extract_run(job_id=job.pk)
    job.refresh_from_db()
    if job.status != Job.Status.SUCCEEDED:
        raise SystemExit(f"frames job {job.pk} ended {job.status}: {job.error_message or job.result}")
    return VideoFrame.objects.filter(extraction_job=job).count()


def timed_round(
    video, path: Path, out: Path, args: argparse.Namespace, vf: str, *, round_index: int
) -> dict[str, list[float]]:
    """Both sides once, in an order that alternates by round (bench/rounds.py). {side: [wall
    seconds, CPU seconds of this process and its waited-for children, i.e. ffmpeg included]}."""
    from bench.rounds import interleaved_round

    product_reset(video)
    want = expected_frames(video, args.interval)
    counts: dict[str, int] = {}
    sides = {
        "product": lambda _: counts.__setitem__("product", product_once(video, args)),
        "baseline": lambda _: counts.__setitem__("baseline", baseline_once(path, out, vf, args.level)),
    }
    totals = interleaved_round([None], sides, round_index=round_index)
    for side, count in counts.items():
        if count != want:
            raise SystemExit(f"{side} captured {count} frames, expected {want}")
    return totals


def outputs_compare(video, out: Path) -> str:
    """The product's frames against ffmpeg's, in time order: pixel difference and PNG bytes."""
    from django.conf import settings
    from PIL import Image, ImageChops

    from apps.media.models import MediaItem

    items = list(MediaItem.objects.filter(video=video, kind="frame").order_by("timestamp_ms"))
    files = sorted(out.glob("*.png"))
    if len(items) != len(files):
        return f"outputs : {len(items)} product frames, {len(files)} baseline frames: not comparable"
    differing, sizes = 0, [0, 0]
    for item, file in zip(items, files, strict=True):
        product_path = Path(settings.MEDIA_ROOT) / item.storage_key
        with Image.open(product_path) as a, Image.open(file) as b:
            if ImageChops.difference(a.convert("RGB"), b.convert("RGB")).getbbox() is not None:
                differing += 1
        sizes[0] += product_path.stat().st_size
        sizes[1] += file.stat().st_size
    return (
        f"outputs : {len(items) - differing}/{len(items)} product frames pixel-identical to ffmpeg's; "
        f"PNG bytes product {sizes[0] / 1e6:.1f} MB, baseline {sizes[1] / 1e6:.1f} MB"
    )


# --- memory -----------------------------------------------------------------------------


def _broker_cleanup() -> None:
    """Remove the per-process spool folder the test settings make (unused: no message is sent)."""
    from django.conf import settings

    folder = settings.CELERY_BROKER_TRANSPORT_OPTIONS.get("data_folder_in")
    if folder and Path(folder).name.endswith(f"-{os.getpid()}"):
        shutil.rmtree(folder, ignore_errors=True)


def _status_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def memory_child(video_id: int, args: argparse.Namespace) -> None:
    """In a fresh process: one extraction; prints 'python_before python_peak ffmpeg_peak' (KiB)."""
    import django

    django.setup()
    from apps.jobs import services as job_services
    from apps.media.models import MediaItem

    job_services._enqueue_on_commit = lambda job: None
    video = MediaItem.objects.get(pk=video_id)
    before = _status_kb("VmRSS")
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")  # reset the peak (VmHWM) to the current RSS
    count = product_once(video, args)
    peak = _status_kb("VmHWM") or resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    ffmpeg_peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    _broker_cleanup()
    print(before, peak, ffmpeg_peak, count)


def memory_product(video, args: argparse.Namespace) -> tuple[int, int, int, int]:
    product_reset(video)
    cmd = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--memory-child",
        str(video.pk),
        "--interval",
        str(args.interval),
    ]
    out = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if out.returncode:
        raise SystemExit(f"memory child failed:\n{out.stderr[-2000:]}")
    before, peak, ffmpeg_peak, count = (int(v) for v in out.stdout.split()[-4:])
    return before, peak, ffmpeg_peak, count


def memory_baseline(path: Path, out: Path, vf: str, level: int) -> int:
    """Peak RSS (KiB) of the bare ffmpeg command."""
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    process = subprocess.Popen(
        baseline_command(path, out, vf, level), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    return usage.ru_maxrss


def memory_report(clips: list[tuple[float, object, Path]], work: Path, args: argparse.Namespace) -> None:
    print("\nmemory (peak RSS during one extraction, MiB):")
    for seconds, video, path in clips:
        before, peak, ffmpeg_peak, count = memory_product(video, args)
        raw = memory_baseline(path, work / "baseline-mem", select_filter(video, args), args.level)
        print(
            f"  {seconds:5.0f} s clip, {count:4d} frames: product Python {peak / 1024:6.1f} "
            f"(+{(peak - before) / 1024:5.1f} over its {before / 1024:.1f} at start), "
            f"its ffmpeg {ffmpeg_peak / 1024:6.1f}; bare ffmpeg {raw / 1024:6.1f}",
            flush=True,
        )


# --- main -------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.memory_child is not None:
        memory_child(args.memory_child, args)
        return 0
    work = Path(tempfile.mkdtemp(prefix="bt-bench-"))
    try:
        django_setup(work, args.db)
        from django.db import connection

        from apps.jobs import services as job_services

        # The job runs here, as a worker would run it: no broker message.
        job_services._enqueue_on_commit = lambda job: None
        print(f"machine : {machine()}")
        print(f"ffmpeg  : {ffmpeg_version()} ({ffmpeg()})")
        print(f"database: {connection.vendor} {connection.settings_dict['NAME']}")
        print(
            f"clip    : making a {args.seconds:g} s {args.size} {args.fps} fps {args.source} H.264 clip …",
            flush=True,
        )
        t0 = time.perf_counter()
        path = clip_make(work / "clips", args, args.seconds)
        video = clip_ingest(path)
        vf = select_filter(video, args)
        want = expected_frames(video, args.interval)
        decoded = round(video.duration_ms / 1000 * video.fps_milli / 1000)
        print(
            f"          {path.stat().st_size / 1e6:.1f} MB, {video.duration_ms / 1000:g} s, "
            f"{video.width}x{video.height}, ~{decoded} frames to decode, {want} to capture "
            f"({time.perf_counter() - t0:.1f} s)"
        )
        print(f"baseline: {' '.join(baseline_command(path, work / 'out', vf, args.level)[5:])}")

        out = work / "baseline-out"
        timed_round(video, path, out, args, vf, round_index=0)  # warm-up: page cache, imports, DB
        from bench.rounds import report

        rounds: list[dict[str, list[float]]] = []
        for r in range(args.rounds):
            rounds.append(timed_round(video, path, out, args, vf, round_index=r))
            print(
                f"round {r + 1}: baseline {rounds[-1]['baseline'][0]:6.2f} s, "
                f"product {rounds[-1]['product'][0]:6.2f} s  (wall; ratio "
                f"{rounds[-1]['baseline'][0] / rounds[-1]['product'][0]:.2f})",
                flush=True,
            )
        print(outputs_compare(video, out))
        print(f"\nmedians over {args.rounds} rounds, {want} frames ({decoded} decoded) per round:")
        labels = {"product": "product (frames job)", "baseline": "the same ffmpeg command"}
        print("\n".join(report(rounds, per=1, unit="round", labels=labels)) + "  (goal ≥ 0.9)")

        if not args.no_memory:
            t0 = time.perf_counter()
            clips = [(MEMORY_SHORT, None, None)]
            if args.long:
                clips.append((MEMORY_LONG, None, None))
            elif args.seconds != MEMORY_SHORT:
                clips.append((args.seconds, video, path))
            made = []
            for seconds, known, known_path in clips:
                if known is None:
                    known_path = clip_make(work / "clips", args, seconds)
                    known = clip_ingest(known_path)
                made.append((seconds, known, known_path))
            print(f"\n(memory clips ready in {time.perf_counter() - t0:.1f} s)", end="")
            memory_report(made, work, args)

        if args.profile:
            from pyinstrument import Profiler

            product_reset(video)
            profiler = Profiler(interval=0.001)
            profiler.start()
            product_once(video, args)
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
        if "django.conf" in sys.modules:
            _broker_cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
