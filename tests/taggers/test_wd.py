"""WD ONNX engine on a hand-built graph (docs/taggers.md#wd-taggers; TAGGERS §10 items 8–13)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from apps.taggers.engine.base import BackendSpec, ModelNotProvisioned, UnsupportedLabelFormat
from apps.taggers.engine.wd import WDBackend, display_name, mcut_threshold, prepare_image, read_labels
from tests.taggers.wd_fixtures import CHARACTERS, GENERAL, RATINGS, labels_csv, write_wd_dir

NAMES = RATINGS + GENERAL + CHARACTERS


def _backend(tmp_path: Path, **kw) -> WDBackend:
    backend = WDBackend()
    backend.load(BackendSpec(kind="x", model_ref=str(write_wd_dir(tmp_path, **kw))))
    return backend


def test_pure_red_fires_probe_r_only_when_channels_are_bgr(tmp_path: Path) -> None:
    out = _backend(tmp_path).run([Image.new("RGB", (40, 40), (255, 0, 0))])[0]
    assert out.general[NAMES.index("probe_r")] > 0.9
    assert out.general[NAMES.index("probe_b")] < 0.1


def test_pure_blue_fires_probe_b(tmp_path: Path) -> None:
    out = _backend(tmp_path).run([Image.new("RGB", (40, 40), (0, 0, 255))])[0]
    assert out.general[NAMES.index("probe_b")] > 0.9


def test_rgba_is_flattened_on_white_and_padded_to_a_white_square() -> None:
    img = Image.new("RGBA", (32, 16), (0, 0, 0, 0))
    img.paste((10, 20, 30, 255), (0, 4, 32, 12))  # an opaque band in the middle rows
    arr = prepare_image(img, 32)
    assert arr.shape == (32, 32, 3)
    assert arr.dtype == np.float32
    # Rows 0–7 and 24–31 are padding, rows 8–11 transparent: all 255 in every channel.
    assert (arr[:12] == 255).all()
    assert (arr[20:] == 255).all()
    # The opaque band sits at rows 12–19, in BGR order.
    assert arr[15, 5].tolist() == [30.0, 20.0, 10.0]


def test_input_size_is_read_from_the_graph(tmp_path: Path) -> None:
    assert _backend(tmp_path).size == 32


@pytest.mark.parametrize("count", [1, 5, 7])
def test_batch_one_graph_runs_items_singly(tmp_path: Path, count: int) -> None:
    backend = _backend(tmp_path, batch_one=True)
    colours = [(255, 0, 0) if i % 2 else (0, 0, 255) for i in range(count)]
    outs = backend.run([Image.new("RGB", (20, 30), c) for c in colours])
    assert backend.batch_one
    assert len(outs) == count
    assert [o.general[NAMES.index("probe_r")] > 0.5 for o in outs] == [i % 2 == 1 for i in range(count)]


@pytest.mark.parametrize("count", [1, 7, 128])
def test_outputs_keep_order_for_batches(tmp_path: Path, count: int) -> None:
    backend = _backend(tmp_path)
    colours = [(255, 0, 0) if i % 3 == 0 else (0, 0, 255) for i in range(count)]
    outs = backend.run([Image.new("RGB", (16, 16), c) for c in colours], {"batch_size": 32})
    assert [o.general[NAMES.index("probe_r")] > 0.5 for o in outs] == [i % 3 == 0 for i in range(count)]


def test_embedding_is_the_second_output(tmp_path: Path) -> None:
    out = _backend(tmp_path).run([Image.new("RGB", (16, 16), (255, 0, 0))])[0]
    assert out.embedding is not None
    assert out.embedding.tolist() == [0.0, 0.0, 255.0]


@pytest.mark.parametrize(("general", "character"), [(0.0, 0.0), (1.0, 1.0), (0.5, 0.9)])
def test_exactly_one_rating_is_marked_whatever_the_thresholds(tmp_path, general, character) -> None:
    out = _backend(tmp_path).run(
        [Image.new("RGB", (16, 16), (0, 255, 0))],
        {"general_threshold": general, "character_threshold": character},
    )[0]
    assert sorted(out.ratings) == [0, 1, 2, 3]
    assert out.rating == 0  # the fixed rating biases make "general" the argmax
    assert not set(out.selected) & set(out.ratings)


def test_mcut_general_example() -> None:
    assert mcut_threshold([0.9, 0.85, 0.2, 0.1]) == pytest.approx(0.525)
    assert [s for s in [0.9, 0.85, 0.2, 0.1] if s > 0.525] == [0.9, 0.85]


def test_mcut_of_fewer_than_two_scores_is_undefined() -> None:
    assert mcut_threshold([0.7]) is None


def test_mcut_character_floor_selects_nothing_low(tmp_path: Path) -> None:
    # Characters of a green image score ≈0.0025 each: MCut alone would pick one, the floor none.
    out = _backend(tmp_path).run([Image.new("RGB", (16, 16), (0, 255, 0))], {"mcut_character": True})[0]
    assert out.thresholds["character"] == pytest.approx(0.15)
    assert not [i for i in out.selected if NAMES[i] in CHARACTERS]


def test_mcut_general_selects_above_the_largest_drop(tmp_path: Path) -> None:
    out = _backend(tmp_path).run([Image.new("RGB", (16, 16), (255, 0, 0))], {"mcut_general": True})[0]
    assert sorted(NAMES[i] for i in out.selected if NAMES[i] in GENERAL) == ["long_hair", "probe_r"]


def test_defaults_use_the_card_threshold_for_known_models(tmp_path: Path) -> None:
    backend = WDBackend()
    backend.load(BackendSpec(kind="x", model_ref=str(write_wd_dir(tmp_path, name="wd-vit-tagger-v3"))))
    assert backend.thresholds == {"general": 0.2614, "character": 0.85}


def test_wrong_header_is_unsupported(tmp_path: Path) -> None:
    bad = labels_csv().replace("tag_id,name,category,count", "id,name,category")
    with pytest.raises(UnsupportedLabelFormat, match="tag_id,name,category,count"):
        WDBackend().load(BackendSpec(kind="x", model_ref=str(write_wd_dir(tmp_path, csv=bad))))


def test_display_names() -> None:
    assert display_name("long_hair") == "long hair"
    assert display_name("^_^") == "^_^"
    assert display_name("o_o") == "o_o"


def test_labels_keep_column_order(tmp_path: Path) -> None:
    path = write_wd_dir(tmp_path) / "selected_tags.csv"
    assert [lb.name for lb in read_labels(path)] == NAMES


def test_missing_files_name_the_directory_and_file(tmp_path: Path) -> None:
    path = write_wd_dir(tmp_path)
    (path / "model.onnx").unlink()
    with pytest.raises(ModelNotProvisioned, match=r"wd-test.*model\.onnx"):
        WDBackend().load(BackendSpec(kind="x", model_ref=str(path)))
