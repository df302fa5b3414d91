"""Interleaved rounds and per-round ratios, shared by the benchmarks (see bench/README.md).

Every side runs on the same inputs in the same round, one input at a time, the order of the
sides rotating from input to input and from round to round, so they share the background load
of a busy machine. A ratio is taken inside each round (product speed / baseline speed = baseline
time / product time) and the median over rounds is reported, never the best round of each side.
"""

from __future__ import annotations

import resource
import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any

Totals = dict[str, list[float]]  # side -> [wall seconds, CPU seconds]


def cpu_seconds() -> float:
    """CPU time of this process and its waited-for children (ffmpeg), user + system."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def rotated(sides: Sequence[str], shift: int) -> list[str]:
    shift %= len(sides)
    return [*sides[shift:], *sides[:shift]]


def interleaved_round(
    inputs: Sequence[Any], sides: dict[str, Callable[[Any], object]], *, round_index: int
) -> Totals:
    """Each input through every side, in an order that rotates per input and per round."""
    names = list(sides)
    totals: Totals = {name: [0.0, 0.0] for name in names}
    for i, item in enumerate(inputs):
        for name in rotated(names, i + round_index):
            wall, cpu = time.perf_counter(), cpu_seconds()
            sides[name](item)
            totals[name][0] += time.perf_counter() - wall
            totals[name][1] += cpu_seconds() - cpu
    return totals


def report(
    rounds: list[Totals], *, per: int, unit: str, product: str = "product", labels: dict[str, str]
) -> list[str]:
    """Lines: median ms per `unit` of each side, then the median per-round ratio against each
    baseline (wall and CPU) with its spread (min–max over rounds)."""
    lines = []
    for name, label in labels.items():
        wall = statistics.median(r[name][0] for r in rounds) / per * 1000
        cpu = statistics.median(r[name][1] for r in rounds) / per * 1000
        lines.append(f"  {label:<58s} {wall:8.1f} ms/{unit} wall {cpu:8.1f} ms/{unit} CPU")
    for name, label in labels.items():
        if name == product:
            continue
        parts = []
        for index, clock in ((0, "wall"), (1, "CPU")):
            ratios = [r[name][index] / r[product][index] for r in rounds]
            parts.append(f"{clock} {statistics.median(ratios):.2f} ({min(ratios):.2f}–{max(ratios):.2f})")
        lines.append(f"  ratio product / {label}: " + ", ".join(parts))
    return lines
