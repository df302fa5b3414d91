"""Scoring quality of tagger heads: masked average precision, thresholds, F1 (docs/taggers.md#metrics).

Pure numpy (scikit-learn for the precision/recall curve); no Django, no torch. Labels are int8
matrices with 1 = positive, 0 = known negative, -1 = unknown; unknowns are left out of every
number unless the caller turned them into negatives first (``pu`` tags).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

# A tag needs this many validation positives for its own threshold and for macro mAP (§4.5).
MIN_VAL_POSITIVES = 5


def masked_ap(scores: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Average precision per column over known rows; NaN where a column has no positive.

    Equal to scikit-learn's ``average_precision_score`` on the known rows (tied scores form one
    step), computed for all columns at once so training can evaluate every 50 steps.
    """
    # Work on tags × rows so every sort and cumulative sum runs over contiguous memory.
    lab = np.ascontiguousarray(labels.T)
    known = lab >= 0
    pos = lab == 1
    n_pos = pos.sum(axis=1)
    n = lab.shape[1]
    if n == 0:
        return np.full(lab.shape[0], np.nan)
    # Unknown rows sort last (score -inf) so they never split a group of tied known scores.
    s = np.where(known, np.ascontiguousarray(scores.T, dtype=np.float32), -np.inf)
    order = np.argsort(-s, axis=1)
    s_sorted = np.take_along_axis(s, order, axis=1)
    pos_sorted = np.take_along_axis(pos, order, axis=1)
    cum_tp = np.cumsum(pos_sorted, axis=1, dtype=np.int32)
    cum_known = np.maximum(np.cumsum(np.take_along_axis(known, order, axis=1), axis=1, dtype=np.int32), 1)
    last = np.ones_like(s_sorted, dtype=bool)
    last[:, :-1] = s_sorted[:, :-1] != s_sorted[:, 1:]
    # Each positive counts the precision at the end of its group of tied scores.
    idx = np.where(last, np.arange(n, dtype=np.int32)[None, :], n - 1)
    group_end = np.minimum.accumulate(idx[:, ::-1], axis=1)[:, ::-1]
    tp_end = np.take_along_axis(cum_tp, group_end, axis=1)
    known_end = np.take_along_axis(cum_known, group_end, axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        ap = np.where(pos_sorted, tp_end / known_end, 0.0).sum(axis=1) / n_pos
    return np.where(n_pos > 0, ap, np.nan)


def masked_ap_fast(scores: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """``masked_ap`` without grouping tied scores: for the every-50-steps check during training."""
    lab = np.ascontiguousarray(labels.T)
    known = lab >= 0
    n_pos = (lab == 1).sum(axis=1)
    s = np.where(known, np.ascontiguousarray(scores.T, dtype=np.float32), -np.inf)
    order = np.argsort(-s, axis=1)
    pos_sorted = np.take_along_axis(lab == 1, order, axis=1)
    cum_tp = np.cumsum(pos_sorted, axis=1, dtype=np.int32)
    cum_known = np.maximum(np.cumsum(np.take_along_axis(known, order, axis=1), axis=1, dtype=np.int32), 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        ap = np.where(pos_sorted, cum_tp / cum_known, 0.0).sum(axis=1) / n_pos
    return np.where(n_pos > 0, ap, np.nan)


def macro_map(scores: np.ndarray, labels: np.ndarray, columns: Sequence[int] | None = None) -> float | None:
    """Mean AP over the given columns (default: those with ≥5 positives); None when there are none."""
    if columns is None:
        columns = [int(c) for c in np.flatnonzero((labels == 1).sum(axis=0) >= MIN_VAL_POSITIVES)]
    if not len(columns):
        return None
    ap = masked_ap(scores[:, list(columns)], labels[:, list(columns)])
    return float(np.nanmean(ap)) if np.isfinite(ap).any() else None


@dataclass(frozen=True)
class Threshold:
    """A tag's decision threshold and how it was chosen (None: per-item MCut, nothing stored)."""

    threshold: float | None
    method: str


def _curve(scores: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    from sklearn.metrics import precision_recall_curve

    known = labels >= 0
    precision, recall, thresholds = precision_recall_curve(
        (labels[known] == 1).astype(np.int8), scores[known].astype(np.float64)
    )
    return precision[:-1], recall[:-1], thresholds


def _f1(precision: np.ndarray, recall: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        f1 = 2 * precision * recall / (precision + recall)
    return np.nan_to_num(f1)


def threshold_pick(scores: np.ndarray, labels: np.ndarray, precision_target: float | None) -> Threshold:
    """One tag: max F1, or the lowest threshold reaching ``precision_target`` (§4.5)."""
    precision, recall, thresholds = _curve(scores, labels)
    if precision_target is not None:
        reached = np.flatnonzero(precision >= precision_target)
        if reached.size:
            return Threshold(float(thresholds[reached[0]]), "precision_target")
    best = int(np.argmax(_f1(precision, recall)))
    method = "max_f1" if precision_target is None else "max_f1_target_missed"
    return Threshold(float(thresholds[best]), method)


def threshold_pooled(scores: np.ndarray, labels: np.ndarray) -> Threshold:
    """One threshold shared by tags with few validation positives: max pooled micro-F1."""
    known = labels >= 0
    if not (labels[known] == 1).any():
        return Threshold(None, "mcut")
    precision, recall, thresholds = _curve(scores[known], labels[known])
    best = int(np.argmax(_f1(precision, recall)))
    return Threshold(float(thresholds[best]), "pooled")


@dataclass(frozen=True)
class Counts:
    """Decisions of one tag at its threshold over known rows."""

    tp: int
    fp: int
    fn: int

    @property
    def precision(self) -> float | None:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else None

    @property
    def recall(self) -> float | None:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else None

    @property
    def f1(self) -> float | None:
        denominator = 2 * self.tp + self.fp + self.fn
        return 2 * self.tp / denominator if denominator else None


def counts_at(scores: np.ndarray, labels: np.ndarray, threshold: float | None) -> Counts:
    if threshold is None:
        return Counts(0, 0, int((labels == 1).sum()))
    predicted = scores >= threshold
    return Counts(
        tp=int((predicted & (labels == 1)).sum()),
        fp=int((predicted & (labels == 0)).sum()),
        fn=int((~predicted & (labels == 1)).sum()),
    )


def micro_macro_f1(counts: Sequence[Counts]) -> tuple[float | None, float | None]:
    """Micro-F1 (pooled decisions) and macro-F1 (mean of per-tag F1) over ``counts``."""
    if not counts:
        return None, None
    pooled = Counts(sum(c.tp for c in counts), sum(c.fp for c in counts), sum(c.fn for c in counts))
    per_tag = [c.f1 or 0.0 for c in counts]
    return pooled.f1, sum(per_tag) / len(per_tag)


def clean(value: float | None) -> float | None:
    """A JSON-safe float rounded to 6 places (NaN becomes None)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return round(float(value), 6)
