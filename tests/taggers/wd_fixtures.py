"""Hand-built model directories for the WD and detector engines (docs/taggers.md#tests): tiny ONNX
graphs made with the `onnx` package, so no test downloads weights."""

from __future__ import annotations

import json
from pathlib import Path

RATINGS = ["general", "sensitive", "questionable", "explicit"]
GENERAL = ["probe_b", "probe_r", "long_hair", "^_^"]
CHARACTERS = ["char_a", "char_b"]
HEADER = "tag_id,name,category,count"


def labels_csv() -> str:
    rows = [HEADER]
    rows += [f"{9000 + i},{n},9,100" for i, n in enumerate(RATINGS)]
    rows += [f"{100 + i},{n},0,50" for i, n in enumerate(GENERAL)]
    rows += [f"{200 + i},{n},4,10" for i, n in enumerate(CHARACTERS)]
    return "\n".join(rows) + "\n"


def wd_graph(size: int = 32, batch_one: bool = False, ir_version: int = 8):
    """input_1 [N,S,S,3] → ReduceMean(1,2) (output 2: embedding) → MatMul W[3,T] → Add → Sigmoid.

    Channel 0 of the input is blue (BGR): `probe_b` and `char_b` read only channel 0, `probe_r`
    and `char_a` only channel 2, so pure red fires `probe_r`/`char_a` only if BGR is right.
    `long_hair` is always on (0.95), `^_^` always off (0.05); ratings are fixed."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    names = RATINGS + GENERAL + CHARACTERS
    t = len(names)
    w = np.zeros((3, t), dtype=np.float32)
    b = np.zeros((t,), dtype=np.float32)
    b[:4] = [1.0, 0.2, -1.0, -2.0]
    for name, channel in (("probe_b", 0), ("probe_r", 2), ("char_b", 0), ("char_a", 2)):
        w[channel, names.index(name)] = 0.05
        b[names.index(name)] = -6.0
    b[names.index("long_hair")] = 2.944
    b[names.index("^_^")] = -2.944
    batch = 1 if batch_one else "N"
    nodes = [
        helper.make_node("ReduceMean", ["input_1"], ["embedding"], axes=[1, 2], keepdims=0),
        helper.make_node("MatMul", ["embedding", "W"], ["logits0"]),
        helper.make_node("Add", ["logits0", "B"], ["logits"]),
        helper.make_node("Sigmoid", ["logits"], ["output"]),
    ]
    graph = helper.make_graph(
        nodes,
        "wd_test",
        [helper.make_tensor_value_info("input_1", TensorProto.FLOAT, [batch, size, size, 3])],
        [
            helper.make_tensor_value_info("output", TensorProto.FLOAT, [batch, t]),
            helper.make_tensor_value_info("embedding", TensorProto.FLOAT, [batch, 3]),
        ],
        initializer=[numpy_helper.from_array(w, "W"), numpy_helper.from_array(b, "B")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = ir_version
    onnx.checker.check_model(model)
    return model


def write_wd_dir(
    root: Path, name: str = "wd-test", *, batch_one: bool = False, csv: str | None = None
) -> Path:
    import onnx

    path = root / "wd" / name
    path.mkdir(parents=True, exist_ok=True)
    onnx.save(wd_graph(batch_one=batch_one), str(path / "model.onnx"))
    (path / "selected_tags.csv").write_text(csv if csv is not None else labels_csv(), encoding="utf-8")
    return path


def yolo_graph(raw, size: int = 64):
    """A detector whose output is the constant `raw` [1, 4 + C, K] whatever the image: input
    `images` [1,3,S,S] → ReduceMean to a scalar × 0 + raw."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    raw = np.asarray(raw, dtype=np.float32)
    nodes = [
        helper.make_node("ReduceMean", ["images"], ["m"], keepdims=0),
        helper.make_node("Mul", ["m", "zero"], ["z"]),
        helper.make_node("Add", ["z", "raw"], ["output0"]),
    ]
    graph = helper.make_graph(
        nodes,
        "yolo_test",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, size, size])],
        [helper.make_tensor_value_info("output0", TensorProto.FLOAT, list(raw.shape))],
        initializer=[
            numpy_helper.from_array(np.zeros((), dtype=np.float32), "zero"),
            numpy_helper.from_array(raw, "raw"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def write_detector_dir(root: Path, raw, labels: list[str], name: str = "det-test", size: int = 64) -> Path:
    import onnx

    path = root / "detector" / name
    path.mkdir(parents=True, exist_ok=True)
    onnx.save(yolo_graph(raw, size), str(path / "model.onnx"))
    (path / "labels.json").write_text(json.dumps(labels), encoding="utf-8")
    return path


# --- scheme worlds (Django) -----------------------------------------------------------------------


def halves_png(left: tuple[int, int, int], right: tuple[int, int, int], seed: int, size: int = 32) -> bytes:
    """A PNG whose left half is `left` and right half `right`; `seed` changes one corner pixel so
    every picture is a distinct file."""
    import io

    from PIL import Image

    img = Image.new("RGB", (size, size), left)
    img.paste(right, (size // 2, 0, size, size))
    img.putpixel((0, size - 1), (seed % 256, seed // 256 % 256, 7))
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


def tagger_make(name: str, kind: str, *, model_dir: str = "", params: dict | None = None):
    """A tagger with a ready version 1 that is active."""
    from apps.taggers.models import Tagger, TaggerVersion
    from apps.tags.selectors.vocabularies import vocabulary_default

    tagger = Tagger.objects.create(
        name=name, kind=kind, vocabulary=vocabulary_default(), model_dir=model_dir, params=params or {}
    )
    version = TaggerVersion.objects.create(tagger=tagger, number=1, status=TaggerVersion.Status.READY)
    tagger.active_version = version
    tagger.save(update_fields=["active_version"])
    return tagger


BOXES = [[0.0, 0.0, 0.5, 1.0, "person"], [0.5, 0.0, 1.0, 1.0, "person"]]


def example_steps(persons, wd, captioner) -> list[dict]:
    """TAGGERS §6's example: persons → who (character per region) and picture (image tags) →
    describe each region, and the background with the persons masked."""
    return [
        {"key": "persons", "tagger": persons.name, "input": "image", "params": {"boxes": BOXES}},
        {"key": "who", "tagger": wd.name, "input": "regions:persons"},
        {"key": "picture", "tagger": wd.name, "input": "image"},
        {
            "key": "describe",
            "tagger": captioner.name,
            "input": "regions:persons",
            "prompt": "Describe {character}. Context: {tags:picture}",
            "after": ["who"],
        },
        {
            "key": "background",
            "tagger": captioner.name,
            "input": "image_masked:persons",
            "prompt": "Describe the background.",
        },
    ]
