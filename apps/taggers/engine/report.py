"""The per-tag and per-tagger numbers of a training run: vocab, thresholds, metrics.json.

Keys follow docs/taggers.md#metrics. No Django, no torch.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from apps.taggers.engine import evaluate as ev

if TYPE_CHECKING:
    from apps.taggers.engine.train import HeadConfig

METRICS_FORMAT = 1


@dataclass
class Report:
    vocab: dict[str, Any]
    thresholds: dict[str, dict[str, Any]]
    metrics: dict[str, Any]


def _flags(*, not_trainable: bool, lr: bool, pu: bool, low_val: bool) -> list[str]:
    flags = []
    if not_trainable:
        flags.append("not_trainable")
    if lr:
        flags.append("indicative")
    if pu:
        flags.append("pu")
    if low_val:
        flags.append("low_val")
    return flags


def _lr_labels(column: np.ndarray, pu: bool) -> np.ndarray:
    return np.where(column < 0, 0, column).astype(np.int8) if pu else column


def report_build(
    *,
    labels: np.ndarray,
    keys: Sequence[int],
    names: Sequence[str],
    train_idx: np.ndarray,
    val_idx: np.ndarray,
    head_cols: np.ndarray,
    lr_cols: np.ndarray,
    pu: np.ndarray,
    val_scores: np.ndarray,
    eval_labels: np.ndarray,
    oof: dict[int, np.ndarray],
    config: HeadConfig,
) -> Report:
    """Thresholds per tag (§4.5), metrics (§4.6) and the vocab mapping tag → (block, row)."""
    train, val = labels[train_idx], labels[val_idx]
    head_row = {int(c): r for r, c in enumerate(head_cols)}
    lr_row = {int(c): r for r, c in enumerate(lr_cols)}
    val_pos = (eval_labels == 1).sum(axis=0)
    evaluated = [c for c in head_row if val_pos[c] >= ev.MIN_VAL_POSITIVES]
    low_val = [c for c in head_row if val_pos[c] < ev.MIN_VAL_POSITIVES]
    chosen: dict[int, ev.Threshold] = {}
    for c in evaluated:
        chosen[c] = ev.threshold_pick(val_scores[:, c], eval_labels[:, c], config.precision_target)
    if low_val:
        pooled = ev.threshold_pooled(val_scores[:, low_val], eval_labels[:, low_val])
        chosen.update(dict.fromkeys(low_val, pooled))
    for c in lr_row:
        chosen[c] = ev.threshold_pick(oof[c], _lr_labels(labels[:, c], bool(pu[c])), config.precision_target)
    per_tag: dict[str, dict[str, Any]] = {}
    thresholds: dict[str, dict[str, Any]] = {}
    vocab_tags: list[dict[str, Any]] = []
    counts_evaluated: list[ev.Counts] = []
    counts_half: list[ev.Counts] = []
    for col, key in enumerate(keys):
        block: str | None = "head" if col in head_row else "lr" if col in lr_row else None
        row = head_row.get(col, lr_row.get(col))
        if col in lr_row:
            scores, truth = oof[col], _lr_labels(labels[:, col], bool(pu[col]))
        else:
            scores, truth = val_scores[:, col], eval_labels[:, col]
        threshold = chosen.get(col)
        counts = ev.counts_at(scores, truth, threshold.threshold) if threshold else None
        ap = float(ev.masked_ap(scores[:, None], truth[:, None])[0]) if threshold else None
        if col in evaluated and counts is not None:
            counts_evaluated.append(counts)
            counts_half.append(ev.counts_at(scores, truth, 0.5))
        flags = _flags(
            not_trainable=block is None, lr=col in lr_row, pu=bool(pu[col]), low_val=col in low_val
        )
        per_tag[str(key)] = {
            "name": names[col],
            "train_pos": int((train[:, col] == 1).sum()),
            "val_pos": int((val[:, col] == 1).sum()),
            "train_neg_known": int((train[:, col] == 0).sum()),
            "val_neg_known": int((val[:, col] == 0).sum()),
            "ap": ev.clean(ap),
            "threshold": ev.clean(threshold.threshold) if threshold else None,
            "method": threshold.method if threshold else None,
            "precision": ev.clean(counts.precision) if counts else None,
            "recall": ev.clean(counts.recall) if counts else None,
            "f1": ev.clean(counts.f1) if counts else None,
            "flags": flags,
        }
        vocab_tags.append({"key": int(key), "name": names[col], "block": block, "row": row})
        if threshold is not None:
            thresholds[str(key)] = {
                "threshold": ev.clean(threshold.threshold),
                "method": threshold.method,
                "val_pos": int(val_pos[col]) if col not in lr_row else int((labels[:, col] == 1).sum()),
            }
    micro_f1, macro_f1 = ev.micro_macro_f1(counts_evaluated)
    micro_half, _ = ev.micro_macro_f1(counts_half)
    metrics = {
        "format": METRICS_FORMAT,
        "macro_map": ev.clean(ev.macro_map(val_scores, eval_labels, evaluated)),
        "micro_f1": ev.clean(micro_f1),
        "macro_f1": ev.clean(macro_f1),
        "micro_f1_at_0_5": ev.clean(micro_half),
        "n_tags_evaluated": len(evaluated),
        "delta_prev": None,
        "delta_zeroshot": None,
        "n_items": int(labels.shape[0]),
        "n_train": int(train_idx.size),
        "n_val": int(val_idx.size),
        "n_tags": len(keys),
        "n_head": len(head_row),
        "n_indicative": len(lr_row),
        "n_not_trainable": len(keys) - len(head_row) - len(lr_row),
        "tags": per_tag,
    }
    vocab = {"format": METRICS_FORMAT, "network": config.network, "tags": vocab_tags}
    return Report(vocab=vocab, thresholds=thresholds, metrics=metrics)
