"""Training a tagger head on stored embeddings and frozen labels (docs/taggers.md#training).

No Django here: the training service reads the frozen labels and the embedding matrix, calls
``head_train`` and writes the result with ``apps.taggers.engine.artifacts``. torch and
scikit-learn are imported inside functions, so importing this module stays cheap.

Labels are an int8 matrix, rows = items, columns = tags: 1 positive, 0 known negative,
-1 unknown (masked out of loss and metrics). Per tag, P = positives:

* P < 5: ``not_trainable`` (no row in the head);
* 5 ≤ P < 20: a logistic regression of its own, C chosen by stratified k-fold, threshold and AP
  from out-of-fold scores, flagged ``indicative``;
* P ≥ 20: a row of the shared head (linear or MLP) trained with masked BCE and ``pos_weight``.

Same labels + seed + host ⇒ bitwise-identical head and thresholds.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from apps.taggers.engine import evaluate as ev

if TYPE_CHECKING:
    import torch

MIN_POSITIVES_LR = 5
MIN_POSITIVES_HEAD = 20
PU_NEGATIVES = 20  # fewer known negatives than this: unknowns become weak negatives
PU_WEIGHT = 0.1
LR_CS = (0.03, 0.1, 0.3, 1.0, 3.0)
NETWORKS = ("linear", "mlp")
LOSSES = ("bce", "asl")


class TrainingError(Exception):
    """The labels cannot train a head (no trainable tag, shapes that do not match)."""


@dataclass(frozen=True)
class HeadConfig:
    """Hyperparameters of one training run (stored in the version's ``hyperparams``)."""

    seed: int = 0
    network: str = "linear"
    loss: str = "bce"
    lr: float | None = None  # None: 0.3 linear, 1e-3 MLP (docs/taggers.md#training)
    weight_decay: float = 1e-4
    batch_size: int = 512
    min_steps: int = 1000
    max_steps: int = 5000
    eval_every: int = 50
    patience: int = 10
    hidden: int = 1024
    dropout: float = 0.2
    val_fraction: float = 0.2
    precision_target: float | None = None
    unknown_as_negative: bool = False  # only for comparisons: treat unknowns as known negatives

    def __post_init__(self) -> None:
        if self.network not in NETWORKS:
            raise TrainingError(f"network must be one of {', '.join(NETWORKS)}, not {self.network!r}.")
        if self.loss not in LOSSES:
            raise TrainingError(f"loss must be one of {', '.join(LOSSES)}, not {self.loss!r}.")
        if not 0 < self.val_fraction < 1:
            raise TrainingError("val_fraction must be between 0 and 1.")
        if self.precision_target is not None and not 0 < self.precision_target <= 1:
            raise TrainingError("precision_target must be in (0, 1].")
        if self.min_steps > self.max_steps:
            raise TrainingError("min_steps must not exceed max_steps.")

    @property
    def learning_rate(self) -> float:
        if self.lr is not None:
            return self.lr
        return 0.3 if self.network == "linear" else 1e-3

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "lr": self.learning_rate}


@dataclass
class TrainOutput:
    """What a training run produced; ``artifacts.artifacts_write`` stores it."""

    tensors: dict[str, np.ndarray]
    vocab: dict[str, Any]
    thresholds: dict[str, dict[str, Any]]
    metrics: dict[str, Any]
    hyperparams: dict[str, Any]
    train_idx: np.ndarray
    val_idx: np.ndarray
    val_scores: np.ndarray  # val rows × every tag (NaN for not_trainable), for comparisons
    eval_labels: np.ndarray  # val rows × every tag, unknowns of pu tags turned negative
    steps: int = 0
    best_step: int = 0
    history: list[tuple[int, float]] = field(default_factory=list)


def split_rows(labels: np.ndarray, *, seed: int, val_fraction: float = 0.2) -> tuple[np.ndarray, np.ndarray]:
    """Train and validation row indices, stratified over the tags' positives (by item)."""
    from iterstrat.ml_stratifiers import MultilabelStratifiedShuffleSplit

    n = labels.shape[0]
    if n < 2:
        raise TrainingError("At least two labelled items are needed to split train and validation.")
    positives = (labels == 1).astype(np.int8)
    if positives.shape[1] < 2:  # iterstrat wants a multilabel matrix: one empty column changes nothing
        positives = np.concatenate([positives, np.zeros((n, 1), dtype=np.int8)], axis=1)
    splitter = MultilabelStratifiedShuffleSplit(n_splits=1, test_size=val_fraction, random_state=seed)
    train_idx, val_idx = next(splitter.split(np.zeros(n), positives))
    return np.sort(train_idx), np.sort(val_idx)


def _eligibility(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Column indices of LR tags, head tags and the pu mask (every column)."""
    positives = (labels == 1).sum(axis=0)
    negatives = (labels == 0).sum(axis=0)
    lr_cols = np.flatnonzero((positives >= MIN_POSITIVES_LR) & (positives < MIN_POSITIVES_HEAD))
    head_cols = np.flatnonzero(positives >= MIN_POSITIVES_HEAD)
    return lr_cols, head_cols, negatives < PU_NEGATIVES


def _targets(labels: np.ndarray, pu: np.ndarray, unknown_as_negative: bool) -> tuple[np.ndarray, np.ndarray]:
    """Float targets and loss weights: known 1, pu unknowns ``PU_WEIGHT``, other unknowns 0."""
    target = (labels == 1).astype(np.float32)
    weight = (labels >= 0).astype(np.float32)
    if unknown_as_negative:
        weight[:] = 1.0
    else:
        weight[:, pu] = np.where(labels[:, pu] >= 0, 1.0, PU_WEIGHT)
    return target, weight


@contextlib.contextmanager
def _deterministic(seed: int, threads: int | None) -> Iterator[None]:
    import torch

    previous = torch.are_deterministic_algorithms_enabled()
    previous_threads = torch.get_num_threads()
    torch.use_deterministic_algorithms(True)
    if threads:
        # On a busy host OpenMP threads spin against each other; callers may pin the count.
        torch.set_num_threads(threads)
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            yield
    finally:
        torch.use_deterministic_algorithms(previous)
        torch.set_num_threads(previous_threads)


def _module(config: HeadConfig, dim: int, n_tags: int) -> torch.nn.Module:
    from torch import nn

    if config.network == "linear":
        return nn.Sequential(nn.Linear(dim, n_tags))
    return nn.Sequential(
        nn.Linear(dim, config.hidden), nn.GELU(), nn.Dropout(config.dropout), nn.Linear(config.hidden, n_tags)
    )


def _loss(
    logits: torch.Tensor, target: torch.Tensor, weight: torch.Tensor, pos_weight: torch.Tensor, kind: str
) -> torch.Tensor:
    import torch
    from torch.nn import functional

    total = weight.sum().clamp(min=1.0)
    if kind == "bce":
        summed = functional.binary_cross_entropy_with_logits(
            logits, target, weight=weight, pos_weight=pos_weight, reduction="sum"
        )
        return summed / total
    # Asymmetric loss, γ− = 4, γ+ = 0, probability clip 0.05 (docs/taggers.md#training).
    p = torch.sigmoid(logits)
    p_neg = (p - 0.05).clamp(min=0)
    loss_pos = target * torch.log(p.clamp(min=1e-8))
    loss_neg = (1 - target) * torch.log((1 - p_neg).clamp(min=1e-8)) * p_neg.pow(4)
    return -((loss_pos + loss_neg) * weight).sum() / total


def _gradients(
    model: torch.nn.Module,
    x: torch.Tensor,
    target: torch.Tensor,
    weight: torch.Tensor,
    pos_weight: torch.Tensor,
    config: HeadConfig,
) -> None:
    """Set the parameters' gradients of the masked loss on one batch. The default recipe (linear,
    BCE) writes them in closed form: d loss / d logit = w · (σ(z)(1 + (pw − 1)t) − pw·t) / Σw,
    then two matrix products; autograd would build the same values through a dozen
    element-wise passes over the batch × tags matrix (docs/taggers.md#training)."""
    import torch

    if config.network != "linear" or config.loss != "bce":
        model.zero_grad(set_to_none=True)
        _loss(model(x), target, weight, pos_weight, config.loss).backward()
        return
    weights, bias = model.get_parameter("0.weight"), model.get_parameter("0.bias")
    with torch.no_grad():
        logits = torch.addmm(bias, x, weights.t())
        slope = torch.sigmoid(logits).mul_(target * (pos_weight - 1) + 1).sub_(target * pos_weight)
        slope.mul_(weight).div_(weight.sum().clamp(min=1.0))
        weights.grad = slope.t().mm(x)
        bias.grad = slope.sum(0)


def _fit_head(
    config: HeadConfig,
    x_train: np.ndarray,
    target: np.ndarray,
    weight: np.ndarray,
    x_val: np.ndarray,
    eval_labels: np.ndarray,
    threads: int | None,
) -> tuple[dict[str, np.ndarray], int, int, list[tuple[int, float]]]:
    """Train the shared head; keep the weights of the best validation mAP (§4.4)."""
    import torch

    n_train, dim = x_train.shape
    pos = target.sum(axis=0) if target.size else np.zeros(0)
    neg = ((1 - target) * weight).sum(axis=0) if target.size else np.zeros(0)
    pos_weight = np.clip(np.sqrt(neg / np.maximum(pos, 1)), 1.0, 100.0).astype(np.float32)
    eval_cols = np.flatnonzero((eval_labels == 1).sum(axis=0) >= ev.MIN_VAL_POSITIVES)
    # enable_grad: a worker that embedded before (ClipModel.load) turned gradients off for its thread.
    with _deterministic(config.seed, threads), torch.enable_grad():
        model = _module(config, dim, target.shape[1])
        optimiser = torch.optim.AdamW(  # fused: one kernel for the update, a third of the time
            model.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay, fused=True
        )
        xt, tt, wt = torch.from_numpy(x_train), torch.from_numpy(target), torch.from_numpy(weight)
        xv, pw = torch.from_numpy(x_val), torch.from_numpy(pos_weight)
        generator = torch.Generator().manual_seed(config.seed)
        batch = min(config.batch_size, n_train)
        best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        best, best_step, stale, step, history = -math.inf, 0, 0, 0, []
        # Rows are gathered once per epoch in shuffled order and each step takes a contiguous
        # slice: the same batches as gathering per step (bitwise), without three gathers a step.
        order, cursor = torch.randperm(n_train, generator=generator), 0
        xe, te, we = xt[order], tt[order], wt[order]
        while step < config.max_steps:
            if cursor + batch > n_train:
                order, cursor = torch.randperm(n_train, generator=generator), 0
                xe, te, we = xt[order], tt[order], wt[order]
            part = slice(cursor, cursor + batch)
            cursor += batch
            model.train()
            _gradients(model, xe[part], te[part], we[part], pw, config)
            optimiser.step()
            step += 1
            if step % config.eval_every and step != config.max_steps:
                continue
            if not eval_cols.size:
                best_state, best_step = {k: v.detach().clone() for k, v in model.state_dict().items()}, step
                if step >= config.min_steps:
                    break
                continue
            model.eval()
            with torch.inference_mode():
                scores = model(xv).numpy()
            current = float(np.nanmean(ev.masked_ap_fast(scores[:, eval_cols], eval_labels[:, eval_cols])))
            history.append((step, round(current, 6)))
            if current > best:
                best, best_step, stale = current, step, 0
                best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
            else:
                stale += 1
            if stale >= config.patience and step >= config.min_steps:
                break
    names = {"0.weight": "head.0.weight", "0.bias": "head.0.bias", "3.weight": "head.3.weight"}
    names["3.bias"] = "head.3.bias"
    tensors = {names[k]: v.numpy().astype(np.float32) for k, v in best_state.items()}
    return tensors, step, best_step, history


def _fit_lr(
    x: np.ndarray, column: np.ndarray, pu: bool, seed: int
) -> tuple[np.ndarray, float, np.ndarray, float]:
    """One small tag: logistic regression, C by stratified k-fold AP; out-of-fold scores (§4.3)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold

    rows = np.flatnonzero(column >= 0) if not pu else np.arange(column.size)
    y = (column[rows] == 1).astype(np.int8)
    sample_weight = np.where(column[rows] >= 0, 1.0, PU_WEIGHT)
    folds = min(5, int(y.sum()), int((y == 0).sum()))
    if folds < 2:
        raise TrainingError("A logistic-regression tag needs at least two positives and two negatives.")
    splits = list(StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed).split(rows, y))
    xr = x[rows].astype(np.float64)
    best: tuple[float, float, np.ndarray] | None = None
    for c in LR_CS:
        oof = np.zeros(rows.size)
        for train, test in splits:
            model = LogisticRegression(C=c, class_weight="balanced", max_iter=2000)
            model.fit(xr[train], y[train], sample_weight=sample_weight[train])
            oof[test] = model.predict_proba(xr[test])[:, 1]
        ap = float(ev.masked_ap(oof[:, None], y[:, None].astype(np.int8))[0])
        if best is None or ap > best[0]:
            best = (ap, c, oof)
    assert best is not None
    model = LogisticRegression(C=best[1], class_weight="balanced", max_iter=2000)
    model.fit(xr, y, sample_weight=sample_weight)
    scores = np.full(column.size, np.nan)
    scores[rows] = best[2]
    return model.coef_[0].astype(np.float32), float(model.intercept_[0]), scores, best[1]


def _check(embeddings: np.ndarray, labels: np.ndarray, keys: Sequence[int]) -> None:
    if embeddings.ndim != 2 or labels.ndim != 2:
        raise TrainingError("Embeddings and labels must be matrices.")
    if embeddings.shape[0] != labels.shape[0]:
        raise TrainingError("Embeddings and labels must have one row per item.")
    if labels.shape[1] != len(keys):
        raise TrainingError("Labels must have one column per tag key.")
    if labels.dtype != np.int8 or not np.isin(labels, (-1, 0, 1)).all():
        raise TrainingError("Labels must be int8 with values -1, 0 and 1.")


def head_train(
    *,
    embeddings: np.ndarray,
    labels: np.ndarray,
    keys: Sequence[int],
    names: Sequence[str] | None = None,
    config: HeadConfig,
    split: tuple[np.ndarray, np.ndarray] | None = None,
    threads: int | None = None,
) -> TrainOutput:
    """Train heads for every trainable tag and measure them on the validation split."""
    _check(embeddings, labels, keys)
    names = list(names) if names is not None else [str(k) for k in keys]
    lr_cols, head_cols, pu = _eligibility(labels)
    if not lr_cols.size and not head_cols.size:
        raise TrainingError(
            f"No tag has {MIN_POSITIVES_LR} or more positive items, so nothing can be trained. "
            "Curate more items with these tags first."
        )
    train_idx, val_idx = (
        split if split is not None else split_rows(labels, seed=config.seed, val_fraction=config.val_fraction)
    )
    x = embeddings.astype(np.float32)
    eval_labels = labels[val_idx].copy()
    eval_labels[:, pu] = np.where(eval_labels[:, pu] < 0, 0, eval_labels[:, pu])
    tensors: dict[str, np.ndarray] = {}
    val_scores = np.full((val_idx.size, labels.shape[1]), np.nan, dtype=np.float32)
    steps = best_step = 0
    history: list[tuple[int, float]] = []
    if head_cols.size:
        target, weight = _targets(labels[train_idx][:, head_cols], pu[head_cols], config.unknown_as_negative)
        tensors, steps, best_step, history = _fit_head(
            config, x[train_idx], target, weight, x[val_idx], eval_labels[:, head_cols], threads
        )
        from apps.taggers.engine.artifacts import head_forward

        val_scores[:, head_cols] = head_forward(tensors, x[val_idx], config.network)
    oof: dict[int, np.ndarray] = {}
    chosen_c: dict[str, float] = {}
    if lr_cols.size:
        weights = np.zeros((lr_cols.size, x.shape[1]), dtype=np.float32)
        biases = np.zeros(lr_cols.size, dtype=np.float32)
        for row, col in enumerate(lr_cols):
            weights[row], biases[row], oof[int(col)], c = _fit_lr(
                x, labels[:, col], bool(pu[col]), config.seed
            )
            chosen_c[str(keys[col])] = c
        tensors["lr.weight"], tensors["lr.bias"] = weights, biases
        from apps.taggers.engine.artifacts import sigmoid

        val_scores[:, lr_cols] = sigmoid(x[val_idx] @ weights.T + biases)
    from apps.taggers.engine.report import report_build

    report = report_build(
        labels=labels, keys=keys, names=names, train_idx=train_idx, val_idx=val_idx, head_cols=head_cols,
        lr_cols=lr_cols, pu=pu, val_scores=val_scores, eval_labels=eval_labels, oof=oof, config=config,
    )  # fmt: skip
    report.metrics.update(steps=steps, best_step=best_step)
    hyperparams = {**config.as_dict(), "lr_c": chosen_c}
    return TrainOutput(
        tensors=tensors, vocab=report.vocab, thresholds=report.thresholds, metrics=report.metrics,
        hyperparams=hyperparams, train_idx=train_idx, val_idx=val_idx, val_scores=val_scores,
        eval_labels=eval_labels, steps=steps, best_step=best_step, history=history,
    )  # fmt: skip
