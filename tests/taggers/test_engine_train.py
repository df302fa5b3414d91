"""The head-training engine on planted-signal data (docs/taggers.md#training; no database)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from apps.taggers.engine import evaluate as ev
from apps.taggers.engine.artifacts import (
    ArtifactIntegrityError,
    artifacts_write,
    head_load,
    labels_sha256,
)
from apps.taggers.engine.train import HeadConfig, TrainingError, head_train, split_rows

PER_TAG_KEYS = {
    "train_pos", "val_pos", "train_neg_known", "val_neg_known", "ap", "threshold", "method",
    "precision", "recall", "f1", "flags",
}  # fmt: skip
TAGGER_KEYS = {"macro_map", "micro_f1", "macro_f1", "n_tags_evaluated", "delta_prev", "delta_zeroshot"}


def planted(seed: int = 0, n: int = 2000, d: int = 64, t: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """N(0, I) rows, L2-normalised, fp16; tag t is positive for the top prev_t of XW + 0.1ε."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, d))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    x = x.astype(np.float16)
    w = rng.standard_normal((d, t))
    s = x.astype(np.float64) @ w + 0.1 * rng.standard_normal((n, t))
    y = np.zeros((n, t), dtype=np.int8)
    for j, prevalence in enumerate(np.linspace(0.03, 0.30, t)):
        y[np.argsort(-s[:, j])[: round(prevalence * n)], j] = 1
    return x, y


def train(x: np.ndarray, y: np.ndarray, **options) -> object:
    split = options.pop("split", None)
    return head_train(
        embeddings=x,
        labels=y,
        keys=list(range(y.shape[1])),
        config=HeadConfig(**options),
        split=split,
        threads=1,
    )


@pytest.fixture(scope="module")
def planted_run():
    x, y = planted()
    return x, y, train(x, y, seed=0, max_steps=2000)


def test_planted_signal_val_macro_map_at_least_085(planted_run) -> None:
    _, _, out = planted_run
    assert out.metrics["macro_map"] >= 0.85


def test_planted_signal_tuned_thresholds_beat_half(planted_run) -> None:
    _, _, out = planted_run
    assert out.metrics["micro_f1"] >= out.metrics["micro_f1_at_0_5"]


def test_training_never_stops_before_the_step_floor(planted_run) -> None:
    _, _, out = planted_run
    assert out.steps >= 1000


def test_metrics_hold_every_per_tag_key(planted_run) -> None:
    _, _, out = planted_run
    missing = {k: PER_TAG_KEYS - set(v) for k, v in out.metrics["tags"].items() if PER_TAG_KEYS - set(v)}
    assert missing == {}


def test_metrics_hold_every_tagger_key(planted_run) -> None:
    _, _, out = planted_run
    assert TAGGER_KEYS - set(out.metrics) == set()


def test_split_is_twenty_percent_by_item(planted_run) -> None:
    _, _, out = planted_run
    assert out.val_idx.size == 400


def test_masking_unknowns_beats_unknown_as_negative() -> None:
    """Half the training positives made unknown: masking wins by ≥ 0.02 val mAP (§10 item 15)."""
    x, truth = planted(seed=1)
    train_idx, val_idx = split_rows(truth, seed=1)
    rng = np.random.default_rng(1)
    hidden = truth.copy()
    train_pos = np.zeros_like(truth, dtype=bool)
    train_pos[train_idx] = truth[train_idx] == 1
    hidden[train_pos & (rng.random(truth.shape) < 0.5)] = -1
    scores = {}
    for as_negative in (False, True):
        out = train(
            x, hidden, seed=1, split=(train_idx, val_idx), max_steps=1500, unknown_as_negative=as_negative
        )
        scores[as_negative] = ev.macro_map(out.val_scores, truth[val_idx])
    assert scores[False] - scores[True] >= 0.02


def test_same_labels_and_seed_give_identical_artifacts(tmp_path: Path) -> None:
    x, y = planted(n=600)
    shas = []
    for run in ("a", "b"):
        out = train(x, y, seed=3, min_steps=200, max_steps=300)
        artifacts_write(
            out, tmp_path / run, item_ids=np.arange(len(y)), labels=y, space={"id": 1}, library_versions={}
        )
        shas.append(
            (
                (tmp_path / run / "head.safetensors").read_bytes(),
                (tmp_path / run / "thresholds.json").read_bytes(),
            )
        )
    assert shas[0] == shas[1]


def test_other_seed_gives_other_weights(tmp_path: Path) -> None:
    x, y = planted(n=600)
    outs = [train(x, y, seed=seed, min_steps=100, max_steps=100) for seed in (3, 4)]
    assert not np.array_equal(outs[0].tensors["head.0.weight"], outs[1].tensors["head.0.weight"])


@pytest.fixture(scope="module")
def small_tags_run():
    """Planted data plus a tag with 4 positives and one with 8 (§10 item 17)."""
    x, y = planted(n=800, t=3)
    rng = np.random.default_rng(5)
    extra = np.zeros((len(y), 2), dtype=np.int8)
    direction = rng.standard_normal(x.shape[1])
    ranking = np.argsort(-(x.astype(np.float64) @ direction))
    extra[ranking[:4], 0] = 1
    extra[ranking[:8], 1] = 1
    labels = np.concatenate([y, extra], axis=1)
    return train(x, labels, seed=0, min_steps=100, max_steps=200)


def test_tag_with_four_positives_is_not_trainable(small_tags_run) -> None:
    assert small_tags_run.metrics["tags"]["3"]["flags"] == ["not_trainable"]


def test_not_trainable_tag_has_no_head_row(small_tags_run) -> None:
    rows = small_tags_run.tensors["head.0.weight"].shape[0] + small_tags_run.tensors["lr.weight"].shape[0]
    assert rows == 4


def test_not_trainable_tag_has_no_threshold(small_tags_run) -> None:
    assert "3" not in small_tags_run.thresholds


def test_tag_with_eight_positives_is_indicative(small_tags_run) -> None:
    assert small_tags_run.metrics["tags"]["4"]["flags"] == ["indicative"]


def test_tag_with_eight_positives_is_a_logistic_regression_row(small_tags_run) -> None:
    entry = next(t for t in small_tags_run.vocab["tags"] if t["key"] == 4)
    assert (entry["block"], entry["row"]) == ("lr", 0)


def test_indicative_tag_has_an_out_of_fold_threshold(small_tags_run) -> None:
    assert small_tags_run.thresholds["4"]["val_pos"] == 8


def test_few_known_negatives_make_a_tag_pu() -> None:
    x, y = planted(n=600, t=2)
    y[:, 1] = np.where(y[:, 1] == 1, 1, -1)
    y[np.flatnonzero(y[:, 1] == -1)[:10], 1] = 0
    out = train(x, y, seed=0, min_steps=50, max_steps=50)
    assert "pu" in out.metrics["tags"]["1"]["flags"]


def test_no_trainable_tag_is_a_clear_error() -> None:
    x, y = planted(n=200, t=2)
    y[:] = 0
    y[:3, 0] = 1
    with pytest.raises(TrainingError, match="No tag has 5 or more positive items"):
        train(x, y, seed=0)


def test_labels_must_be_minus_one_zero_one() -> None:
    x, y = planted(n=200, t=2)
    y[0, 0] = 2
    with pytest.raises(TrainingError, match="-1, 0 and 1"):
        train(x, y, seed=0)


def test_loaded_head_scores_like_training(tmp_path: Path, small_tags_run) -> None:
    x, _ = planted(n=800, t=3)
    labels = np.zeros((800, 5), dtype=np.int8)
    sha = artifacts_write(
        small_tags_run, tmp_path, item_ids=np.arange(800), labels=labels, space={"id": 1}, library_versions={}
    )
    head = head_load(tmp_path, sha)
    scores = head.score(x[small_tags_run.val_idx])
    assert np.array_equal(scores, small_tags_run.val_scores[:, [0, 1, 2, 4]])


def test_tampered_artifact_fails_the_hash_check(tmp_path: Path, small_tags_run) -> None:
    sha = artifacts_write(
        small_tags_run, tmp_path, item_ids=np.arange(800), labels=np.zeros((800, 5), dtype=np.int8),
        space={"id": 1}, library_versions={},
    )  # fmt: skip
    thresholds = json.loads((tmp_path / "thresholds.json").read_text())
    thresholds["0"]["threshold"] = 0.01
    (tmp_path / "thresholds.json").write_text(json.dumps(thresholds))
    with pytest.raises(ArtifactIntegrityError, match=r"thresholds\.json"):
        head_load(tmp_path, sha)


def test_labels_hash_changes_with_one_label() -> None:
    _, y = planted(n=100, t=2)
    before = labels_sha256(np.arange(100), [1, 2], y)
    y[0, 0] = -1
    assert labels_sha256(np.arange(100), [1, 2], y) != before


def test_masked_ap_matches_scikit_learn_on_ties_and_unknowns() -> None:
    from sklearn.metrics import average_precision_score

    rng = np.random.default_rng(0)
    scores = np.round(rng.random((300, 6)), 1)
    labels = rng.integers(-1, 2, (300, 6)).astype(np.int8)
    ours = ev.masked_ap(scores, labels)
    known = [labels[:, c] >= 0 for c in range(6)]
    theirs = [average_precision_score(labels[k, c] == 1, scores[k, c]) for c, k in enumerate(known)]
    assert np.allclose(ours, theirs)


def test_precision_target_picks_the_lowest_threshold_reaching_it() -> None:
    scores = np.array([0.9, 0.8, 0.7, 0.6, 0.5, 0.4])
    labels = np.array([1, 1, 0, 1, 0, 0], dtype=np.int8)
    picked = ev.threshold_pick(scores, labels, precision_target=0.75)
    assert (picked.threshold, picked.method) == (0.6, "precision_target")


def test_closed_form_gradients_equal_autograd_on_masked_weighted_bce() -> None:
    """The default recipe's hand-written gradients match what autograd gives for the same loss,
    with unknowns masked, weak pu weights and pos_weight all in play."""
    import torch

    from apps.taggers.engine.train import _gradients, _loss, _module

    rng = np.random.default_rng(7)
    x = torch.from_numpy(rng.standard_normal((64, 16)).astype(np.float32))
    target = torch.from_numpy((rng.random((64, 5)) < 0.3).astype(np.float32))
    weight = torch.from_numpy(rng.choice([0.0, 0.1, 1.0], size=(64, 5)).astype(np.float32))
    pos_weight = torch.from_numpy(rng.uniform(1, 5, 5).astype(np.float32))
    config = HeadConfig(network="linear", loss="bce")
    model = _module(config, 16, 5)
    _gradients(model, x, target, weight, pos_weight, config)
    closed = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    with torch.enable_grad():  # an earlier test in this process may have embedded, turning it off
        _loss(model(x), target, weight, pos_weight, "bce").backward()
    for mine, reference in zip(closed, (p.grad for p in model.parameters()), strict=True):
        assert torch.allclose(mine, reference, atol=1e-6), (mine - reference).abs().max()
