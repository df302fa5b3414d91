"""The open_clip engine and provisioning without a database (docs/taggers.md#clip):
§10 checks 6 (local-dir reproduces the in-memory model), 32 (missing files), 33 (refs), 31
(network blocked) and the provisioning manifest."""

from __future__ import annotations

import io
import json
import shutil
import socket
from pathlib import Path

import numpy as np
import pytest

from apps.taggers.engine import clip, provision
from apps.taggers.engine.base import (
    EmbeddingSpaceMismatch,
    InvalidModelRef,
    ModelIntegrityError,
    ModelNotProvisioned,
)
from tests.taggers import factories


@pytest.fixture
def root(tmp_path: Path, tiny_mirror: Path) -> Path:
    provision.provision(
        model_root=tmp_path, kind="open_clip", repo="test/tiny", name="tiny", from_dir=tiny_mirror
    )
    return tmp_path


REF = clip.parse_ref("local-dir:open_clip/tiny")


def _loaded(root: Path, expected: str = "") -> clip.ClipModel:
    info = clip.model_info(REF, root)
    model = clip.ClipModel()
    model.load(
        REF, root, preprocess_cfg=info.preprocess_cfg, expected_sha256=expected, device="cpu", model="tiny"
    )
    return model


@pytest.mark.parametrize(
    "ref",
    [
        "ViT-B-32|laion2b_s34b_b79k",
        "ViT-B-32|openai",
        "hf-hub:org/x",
        "ViT-B-32",
        "local-dir:/abs/dir",
        "local-dir:../up",
    ],
)
def test_refs_that_download_or_escape_are_refused(ref: str) -> None:
    with pytest.raises(InvalidModelRef):
        clip.parse_ref(ref)


def test_a_built_in_config_with_a_weights_file_is_accepted() -> None:
    parsed = clip.parse_ref("ViT-B-32|open_clip/vitb32/open_clip_model.safetensors")
    assert parsed.files == ("open_clip/vitb32/open_clip_model.safetensors",)


def test_model_info_reads_dim_and_the_squash_default(root: Path) -> None:
    info = clip.model_info(REF, root)
    assert (info.dim, info.preprocess_cfg["resize_mode"], info.preprocess_cfg["size"]) == (32, "squash", 32)


def test_local_dir_reproduces_the_in_memory_model(root: Path) -> None:
    """§10.6: the provisioned `local-dir:` gives exactly the vectors of the model it was saved from."""
    import torch

    pictures = [factories.shapes_picture(seed)[0] for seed in range(5)]
    loaded = _loaded(root)
    ours = loaded.embed([loaded.preprocess(io.BytesIO(p)) for p in pictures])
    memory = factories.tiny_model()
    with torch.inference_mode():
        batch = torch.stack([loaded.preprocess(io.BytesIO(p)) for p in pictures])
        reference = memory.encode_image(batch, normalize=True).numpy()
    assert np.array_equal(ours, clip._fp16_normalised(torch.from_numpy(reference)))


def test_vectors_are_fp16_unit_length_and_close_to_fp32(root: Path) -> None:
    import torch

    loaded = _loaded(root)
    tensors = [loaded.preprocess(io.BytesIO(factories.shapes_picture(seed)[0])) for seed in range(7)]
    vectors = loaded.embed(tensors)
    with torch.inference_mode():
        exact = loaded.model.encode_image(torch.stack(tensors), normalize=True).numpy()
    assert vectors.dtype == np.dtype("<f2")
    assert np.allclose(np.linalg.norm(vectors.astype(np.float32), axis=1), 1.0, atol=1e-3)
    assert float(np.abs(vectors.astype(np.float32) - exact).max()) <= 1e-3


def test_batches_of_1_7_and_128_give_one_vector_each_in_order(root: Path) -> None:
    loaded = _loaded(root)
    tensor = loaded.preprocess(io.BytesIO(factories.shapes_picture(1)[0]))
    single = loaded.embed([tensor])[0]
    for size in (1, 7, 128):
        batch = [loaded.preprocess(io.BytesIO(factories.shapes_picture(s)[0])) for s in range(size - 1)] + [
            tensor
        ]
        out = loaded.embed(batch)
        assert out.shape == (size, 32)
        assert float(np.abs(out[-1].astype(np.float32) - single.astype(np.float32)).max()) <= 1e-3


def test_a_missing_weights_file_is_named_before_torch_loads(root: Path) -> None:
    """§10.32: ModelNotProvisioned names the model, the directory and the file."""
    (root / "open_clip/tiny/open_clip_model.safetensors").unlink()
    with pytest.raises(ModelNotProvisioned) as caught:
        _loaded(root)
    message = caught.value.message
    assert "'tiny'" in message
    assert "open_clip/tiny" in message
    assert "open_clip_model.safetensors" in message
    assert "models provision" in message


def test_other_weights_raise_a_space_mismatch(root: Path) -> None:
    with pytest.raises(EmbeddingSpaceMismatch):
        _loaded(root, expected="0" * 64)


def test_the_zero_shot_text_matrix_is_unit_columns(root: Path) -> None:
    loaded = _loaded(root)
    matrix = loaded.text_matrix(["red", "green", "blue"], ["a {} thing.", "{}"])
    assert matrix.shape == (32, 3)
    assert np.allclose(np.linalg.norm(matrix, axis=0), 1.0, atol=1e-5)


def test_transparent_pixels_become_white() -> None:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGBA", (4, 4), (255, 0, 0, 0)).save(buffer, "PNG")
    buffer.seek(0)
    assert clip.decode(buffer).getpixel((0, 0)) == (255, 255, 255)


def test_provision_writes_a_manifest_and_verify_finds_tampering(root: Path) -> None:
    manifest = json.loads((root / "open_clip/tiny/MANIFEST.json").read_text())
    assert set(manifest["files"]) == {"open_clip_config.json", "open_clip_model.safetensors"}
    assert [v.ok for v in provision.verify_all(root)] == [True]
    with (root / "open_clip/tiny/open_clip_config.json").open("a") as handle:
        handle.write(" ")
    assert provision.verify_all(root)[0].problems == [
        "open_clip_config.json: sha256 differs from the manifest"
    ]
    with pytest.raises(ModelIntegrityError):
        provision.require_intact(root / "open_clip/tiny", ["open_clip_config.json"])


def test_provision_from_an_incomplete_mirror_names_the_missing_files(
    tmp_path: Path, tiny_mirror: Path
) -> None:
    mirror = tmp_path / "partial"
    shutil.copytree(tiny_mirror, mirror)
    (mirror / "open_clip_model.safetensors").unlink()
    with pytest.raises(ModelNotProvisioned, match=r"open_clip_model\.safetensors"):
        provision.provision(
            model_root=tmp_path / "m", kind="open_clip", repo="x/y", name="t", from_dir=mirror
        )
    assert not (tmp_path / "m/open_clip/t").exists()


def test_provision_refuses_to_download_offline(tmp_path: Path) -> None:
    with pytest.raises(ModelNotProvisioned, match="HF_HUB_OFFLINE=1"):
        provision.provision(model_root=tmp_path, kind="open_clip", repo="x/y", name="t", revision="abc")


def test_non_loopback_sockets_are_blocked() -> None:
    """§10.31: the taggers tests cannot reach the network (loopback stays open)."""
    with (
        pytest.raises(OSError, match="only loopback"),
        socket.create_connection(("192.0.2.1", 80), timeout=1),
    ):
        pass
    with pytest.raises(OSError, match="only loopback"):
        socket.getaddrinfo("huggingface.co", 443)


def test_the_backend_interface_returns_one_output_per_item_in_order(root: Path, tmp_path: Path) -> None:
    """§10.2 for clip_embed: batches of 1, 7 and 128 give len(items) outputs in input order."""
    from apps.taggers.engine.base import Item

    loaded = _loaded(root)
    paths = []
    for seed in range(8):
        path = tmp_path / f"p{seed}.png"
        path.write_bytes(factories.shapes_picture(seed)[0])
        paths.append(path)
    items = [Item(item_id=n, path=str(paths[n % 8])) for n in range(130)]
    reference = loaded.run(items[:8], {"batch": 8})
    for size in (1, 7, 128):
        outputs = loaded.run(items[:size], {"batch": size})
        assert len(outputs) == size
        for n, output in enumerate(outputs):
            assert (
                float(
                    np.abs(
                        output.embedding.astype(np.float32) - reference[n % 8].embedding.astype(np.float32)
                    ).max()
                )
                <= 1e-3
            )
