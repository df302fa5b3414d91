"""The bundle writer on hand-made plans over real images (docs/export-bundle.md)."""

from __future__ import annotations

import dataclasses
import json
import re
import shlex
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest
from PIL import Image

from apps.training import upstream
from apps.training.bundle.check import check_bundle, is_error
from apps.training.bundle.errors import BundleError
from apps.training.bundle.writer import write_bundle
from apps.training.bundle.zipstream import zip_stream
from tests.training.bundle.conftest import sha

STEM = re.compile(r"^i[0-9a-f]{12}(-m)?$")


def _files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _items(root: Path) -> list[dict]:
    return [json.loads(line) for line in (root / "items.jsonl").read_text().splitlines()]


def test_layout_stems_and_checks(make_plan, export, logic):
    plan = make_plan(ti=True, mirror="per_item", reg=("tiny.jpg",))
    root = export(plan)
    for name in (
        "session.json",
        "items.jsonl",
        "EXPORT_REPORT.md",
        "README.md",
        "scripts/relocate.py",
        "data/metadata.jsonl",
        "kohya/dataset.toml",
        "kohya/args.toml",
        "kohya/sample_prompts.json",
        "kohya/train.sh",
        "kohya/train.ps1",
        "onetrainer/concepts.json",
        "onetrainer/samples.json",
        "onetrainer/config.json",
        "onetrainer/train.sh",
        "diffusers/train_text_to_image_lora.sh",
        "diffusers/images/metadata.jsonl",
        "ti/mychr/a1111_template.txt",
        "ti/mychr/kohya_dataset.toml",
        "ti/mychr/onetrainer_concepts.json",
        "ti/mychr/diffusers_ti.sh",
    ):
        assert (root / name).is_file(), name
    for top in ("data", "reg"):
        for folder in (root / top).iterdir():
            if folder.is_dir():
                for f in folder.iterdir():
                    assert STEM.match(f.stem), f
                    assert f.suffix in (".png", ".jpg", ".webp", ".caption", ".txt")
    assert sorted(p.name for p in (root / "reg").iterdir()) == ["girls--reg"]
    items = _items(root)
    assert [(i["partition"], i["id"]) for i in items] == sorted((i["partition"], i["id"]) for i in items)
    assert len(items) == plan.item_count
    assert any(i["mirror_of"] for i in items)
    assert [f for f in check_bundle(root, logic=logic) if is_error(f)] == []
    # TI squares are R×R, A1111 captions one line without a final newline, images/ only images
    for png in (root / "ti/mychr/images").iterdir():
        assert Image.open(png).size == (256, 256)
    for txt in (root / "ti/mychr/captioned").glob("*.txt"):
        assert "\n" not in txt.read_text()
    assert (root / "ti/mychr/images").stat().st_ino != 0
    image = next((root / "ti/mychr/images").iterdir())
    assert image.stat().st_ino == (root / "ti/mychr/captioned" / image.name).stat().st_ino  # hard link
    # launch scripts are executable, root-free
    assert (root / "kohya/train.sh").stat().st_mode & 0o111
    assert "/srv/train" not in (root / "kohya/train.sh").read_text()


def test_copy_versus_convert(make_plan, export, image_zoo):
    root = export(make_plan(images="original", targets=("kohya",)))
    by_name = {i["source"]["original_name"]: i for i in _items(root)}
    plain = by_name["plain.jpg"]
    assert plain["file"].endswith(".jpg")
    assert plain["source"]["transform"] == []
    assert (root / plain["file"]).read_bytes() == image_zoo["plain.jpg"].read_bytes()
    assert (root / by_name["plain.png"]["file"]).read_bytes() == image_zoo["plain.png"].read_bytes()
    rotated = by_name["rotated.jpg"]
    assert rotated["file"].endswith(".png")
    assert (rotated["width"], rotated["height"]) == (600, 900)
    with Image.open(root / rotated["file"]) as im:
        assert im.size == (600, 900)
        assert 0x0112 not in im.getexif()
    alpha = by_name["alpha.png"]
    with Image.open(root / alpha["file"]) as im:
        assert im.mode == "RGB"
        assert im.getpixel((10, 10)) == (255, 255, 255)
    assert "flatten_alpha" in alpha["source"]["transform"]
    with Image.open(root / by_name["deep.png"]["file"]) as im:
        assert im.mode == "L"
        assert im.getextrema()[1] > 200
    with Image.open(root / by_name["palette.gif"]["file"]) as im:
        assert im.format == "PNG"
        assert im.mode == "RGB"
    for item in by_name.values():
        assert item["sha256"] == sha(root / item["file"])


def test_bucket_mode_resizes_and_never_upscales(make_plan, export):
    root = export(make_plan(images="bucket", targets=("kohya",)))
    by_name = {i["source"]["original_name"]: i for i in _items(root)}
    large = by_name["large.jpg"]
    assert [large["width"], large["height"]] == large["buckets"]["kohya"] == [576, 448]
    assert large["file"].endswith(".jpg")
    tiny = by_name["tiny.jpg"]
    assert (tiny["width"], tiny["height"]) == (64, 64)
    assert tiny["source"]["transform"] == []


def test_mirrored_copy_is_flipped(make_plan, export):
    root = export(make_plan(mirror="per_item", targets=("kohya",)))
    items = {i["id"]: i for i in _items(root)}
    copy = next(i for i in items.values() if i["mirror_of"])
    with Image.open(root / copy["file"]) as a, Image.open(root / items[copy["mirror_of"]]["file"]) as b:
        assert a.size == b.size
        assert a.convert("RGB").getpixel((5, 5)) == b.convert("RGB").getpixel((b.width - 6, 5))


def test_determinism_files_and_zip(make_plan, export):
    first = export(make_plan(ti=True, mirror="per_item", images="bucket"))
    second = export(make_plan(ti=True, mirror="per_item", images="bucket"))
    assert _files(first) == _files(second)
    zip_a = b"".join(zip_stream(first, prefix="b/"))
    zip_b = b"".join(zip_stream(second, prefix="b/"))
    assert zip_a == zip_b


def test_zip_is_valid_sorted_with_modes(make_plan, export, tmp_path):
    root = export(make_plan(targets=("kohya", "onetrainer")))
    target = tmp_path / "b.zip"
    with target.open("wb") as out:
        for chunk in zip_stream(root):
            out.write(chunk)
    with zipfile.ZipFile(target) as zf:
        assert zf.testzip() is None
        names = zf.namelist()
        assert names == sorted(names)
        assert set(names) == set(_files(root))
        for info in zf.infolist():
            assert info.date_time == (1980, 1, 1, 0, 0, 0)
            mode = info.external_attr >> 16
            assert mode == (0o100755 if info.filename.endswith((".sh", ".py")) else 0o100644)
            assert zf.read(info) == (root / info.filename).read_bytes()


def test_relocate_equals_export_at_new_root(make_plan, export):
    moved = export(make_plan(ti=True, root="/srv/one"))
    fresh = export(make_plan(ti=True, root="D:/train/two"))
    run = subprocess.run(
        [sys.executable, str(moved / "scripts/relocate.py"), "D:/train/two"], capture_output=True, text=True
    )
    assert run.returncode == 0, run.stderr
    assert _files(moved) == _files(fresh)
    session = json.loads((moved / "session.json").read_text())
    assert session["export"]["target_root"] == "D:/train/two"
    assert "kohya/dataset.toml" in session["export"]["path_files"]


def test_tomls_parse_back(make_plan, export):
    root = export(make_plan(ti=True, reg=("tiny.jpg",)))
    dataset = tomllib.loads((root / "kohya/dataset.toml").read_text())
    assert set(dataset) == {"general", "datasets"}
    assert dataset["general"]["caption_extension"] == ".caption"
    block = dataset["datasets"][0]
    assert block["enable_bucket"] is True
    assert isinstance(block["caption_dropout_rate"], float)
    dirs = [s["image_dir"] for s in block["subsets"]]
    assert dirs == [
        "/srv/train/mychar/reg/girls--reg",
        "/srv/train/mychar/data/mychar--all",
    ]  # partition order
    assert [s.get("is_reg", False) for s in block["subsets"]].count(True) == 1
    args = tomllib.loads((root / "kohya/args.toml").read_text())
    assert args["data"]["dataset_config"] == "/srv/train/mychar/kohya/dataset.toml"
    assert isinstance(args["network"]["network_alpha"], float)
    ti = (root / "ti/mychr/kohya_dataset.toml").read_text()
    assert "dropout" not in ti
    tomllib.loads(ti)


def test_concepts_every_key_in_order(make_plan, export, logic):
    root = export(make_plan(mirror="per_item"))
    concepts = json.loads((root / "onetrainer/concepts.json").read_text())
    assert [c["name"] for c in concepts] == ["mychar--flip", "mychar--noflip"]
    first = concepts[0]
    # OneTrainer's to_dict() order (apps/training/upstream): image and text come first
    assert list(first)[:6] == ["__version", "image", "text", "name", "path", "seed"]
    assert list(first) == ["__version", *upstream.ONETRAINER_CONCEPT_KEYS]
    assert first["__version"] == 2
    assert upstream.onetrainer_concepts_problems(concepts) == []
    assert first["seed"] == logic.rand.concept_seed(1234, "mychar--flip")
    assert first["image"]["enable_random_flip"] is True
    assert concepts[1]["image"]["enable_random_flip"] is False
    assert first["balancing"] == 4.0
    assert first["balancing_strategy"] == "REPEATS"
    keep = first["text"]["tag_dropout_special_tags"]
    if keep:
        assert (root / keep.removeprefix("/srv/train/mychar/")).is_file()


def test_metadata_sorted_and_loads_as_imagefolder(make_plan, export, tmp_path, monkeypatch):
    root = export(make_plan(mirror="per_item", reg=("tiny.jpg",)))
    rows = [json.loads(line) for line in (root / "data/metadata.jsonl").read_text().splitlines()]
    names = [r["file_name"] for r in rows]
    assert names == sorted(names)
    assert not any(n.startswith(("/", "girls")) for n in names)
    assert list(rows[0]) == ["file_name", "text", "text_variants", "tags", "dataset", "partition"]
    # A03 runs here, never skipped: `datasets` is in requirements-dev.txt.
    import datasets

    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    columns = {"image", "text", "text_variants", "tags", "dataset", "partition"}
    loaded = datasets.load_dataset("imagefolder", data_dir=str(root / "data"), cache_dir=str(tmp_path / "hf"))
    train = loaded["train"]
    assert train.num_rows == len(rows)
    assert set(train.column_names) == columns
    # Per-item mirroring: the diffusers scripts read diffusers/images (originals + flipped copies).
    own = [json.loads(line) for line in (root / "diffusers/images/metadata.jsonl").read_text().splitlines()]
    assert any(Path(r["file_name"]).stem.endswith("-m") for r in own)
    images = datasets.load_dataset(
        "imagefolder", data_dir=str(root / "diffusers/images"), cache_dir=str(tmp_path / "hf")
    )["train"]
    assert images.num_rows == len(own)
    assert set(images.column_names) == columns
    assert images[0]["text"] == own[0]["text"]


def test_corrupt_image_names_the_item(make_plan, export, tmp_path, logic):
    plan = make_plan(broken=("plain.png",), targets=("kohya",))
    bad = next(i.id for i in plan.items() if i.storage_key == "broken")
    dest = tmp_path / "failed"
    dest.mkdir()
    with pytest.raises(BundleError) as caught:
        write_bundle(plan, dest, logic=logic)
    assert caught.value.code == "training.bundle_invalid"
    assert caught.value.findings[0].item == bad
    assert bad in caught.value.message


def test_relative_root_is_refused(make_plan, tmp_path, logic):
    dest = tmp_path / "x"
    dest.mkdir()
    with pytest.raises(BundleError):
        write_bundle(make_plan(root="srv/relative"), dest, logic=logic)


def test_checks_report_broken_bundles(make_plan, export, logic):
    root = export(make_plan(mirror="per_item"))
    folder = root / "data/mychar--flip"
    image = next(folder.glob("*.jpg"))
    (folder / "i000000000000.caption").write_text("orphan\n")
    (folder / "notes.md").write_text("x")
    image.with_suffix(".txt").unlink()
    with image.open("ab") as fh:
        fh.write(b"x")
    codes = {f.code for f in check_bundle(root, logic=logic) if is_error(f)}
    assert {"A05", "L12", "A12"} <= codes
    meta = root / "data/metadata.jsonl"
    meta.write_text("".join(meta.read_text().splitlines(keepends=True)[1:]))
    assert "L10" in {f.code for f in check_bundle(root, logic=logic)}


def test_progress_is_reported(make_plan, export):
    calls = []
    export(make_plan(targets=("kohya",)), progress=lambda done, total: calls.append((done, total)))
    assert calls[-1] == (len(calls), len(calls))
    assert calls[0][0] == 1


def test_missing_dest_is_made_and_unsorted_items_refused(make_plan, tmp_path, logic):
    plan = make_plan(targets=("kohya",))
    dest = tmp_path / "new" / "bundle"
    result = write_bundle(plan, dest, logic=logic)
    assert result.item_count == plan.item_count
    assert (dest / "items.jsonl").is_file()
    items = list(plan.items())
    plan.items = lambda: iter(reversed(items))
    with pytest.raises(BundleError) as caught:
        write_bundle(plan, tmp_path / "other", logic=logic)
    assert caught.value.findings[0].code == "L12"


def test_item_without_caption_is_refused(make_plan, tmp_path, logic):
    import dataclasses

    plan = make_plan(targets=("kohya",))
    items = list(plan.items())
    bare = dataclasses.replace(
        items[0], caption=dataclasses.replace(items[0].caption, entries=(), descriptions={})
    )
    plan.items = lambda: iter([bare, *items[1:]])
    with pytest.raises(BundleError) as caught:
        write_bundle(plan, tmp_path / "x", logic=logic)
    assert caught.value.findings[0].code == "L01"
    assert caught.value.findings[0].item == bare.id


@pytest.mark.parametrize("crop", ["center", "focus"])
def test_diffusers_images_for_per_item_mirroring(make_plan, export, logic, crop):
    root = export(make_plan(mirror="per_item", crop=crop, targets=("diffusers",)))
    base = root / "diffusers/images"
    flip = sorted(p.name for p in (base / "mychar--flip").iterdir())
    originals = sorted(p.name for p in (root / "data/mychar--flip").iterdir())
    assert len(flip) == 2 * len(originals)
    assert all(any(n.startswith(Path(o).stem + "-m.") for n in flip) for o in originals)
    rows = [json.loads(line) for line in (base / "metadata.jsonl").read_text().splitlines()]
    files = sorted(f"{p.parent.name}/{p.name}" for p in base.glob("*/*"))
    assert [r["file_name"] for r in rows] == files
    if crop == "focus":
        assert {Image.open(base / f).size for f in files} == {(512, 512)}
    else:
        original = next((root / "data/mychar--flip").iterdir())
        assert original.stat().st_ino == (base / "mychar--flip" / original.name).stat().st_ino
    script = next((root / "diffusers").glob("train_*.sh")).read_text()
    assert "--random_flip" not in script
    assert '"$BUNDLE/diffusers/images"' in script
    assert [f for f in check_bundle(root, logic=logic) if is_error(f)] == []


def test_empty_plan_is_refused(make_plan, tmp_path, logic):
    plan = make_plan(targets=("kohya",))
    plan.items = lambda: iter(())
    with pytest.raises(BundleError) as caught:
        write_bundle(plan, tmp_path / "x", logic=logic)
    assert caught.value.findings[0].code == "B04"


def test_session_json_order_and_report(make_plan, export):
    root = export(make_plan(mirror="per_item", ti=True))
    text = (root / "session.json").read_text()
    session = json.loads(text)
    assert list(session) == [
        "schema",
        "session",
        "base_model",
        "method",
        "image_policy",
        "caption_policy",
        "datasets",
        "textual_inversion",
        "samples",
        "targets",
        "export",
    ]
    assert text.startswith('{\n  "schema": "baggintag.session/1"')
    assert session["export"]["path_files"] == sorted(session["export"]["path_files"])
    report = (root / "EXPORT_REPORT.md").read_text()
    assert "## Buckets (kohya)" in report
    assert "Pre-flipped copies" in report
    card = (root / "README.md").read_text()
    assert "CC-BY-4.0" in card
    assert "| anon |" in card
    assert "| example.org |" in card


def test_stored_model_references_never_run_in_launch_scripts(make_plan, export, tmp_path):
    """A model reference saved with shell syntax (rows from before the input checks, or a hand
    edit) is a literal in every launch script: nothing in it runs."""
    canary = tmp_path / "ran"
    hostile = f"$(touch {canary})`touch {canary}`"
    plan = make_plan(ti=True)
    plan = dataclasses.replace(
        plan,
        base_model=dataclasses.replace(plan.base_model, source_ref=hostile, diffusers_ref=hostile),
        textual_inversion=dataclasses.replace(plan.textual_inversion, init_word=hostile),
    )
    root = export(plan)
    diffusers = next((root / "diffusers").glob("train_*.sh")).read_text()
    # The script's model set-up alone (no relocation, no trainer): BASE_MODEL keeps the text.
    setup = "\n".join(
        line
        for line in diffusers.splitlines()
        if line.startswith(('if [ -z "${BASE_MODEL', ': "${BASE_MODEL'))
    )
    assert setup
    out = subprocess.run(
        ["sh", "-c", f'{setup}\nprintf %s "$BASE_MODEL"'],
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin"},
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout == hostile
    # kohya's TI command line splits into words where each hostile text is one literal argument.
    line = next(
        line for line in (root / "ti/mychr/kohya_ti.sh").read_text().splitlines() if "--init_word" in line
    )
    words = shlex.split(line[line.index("--pretrained_model_name_or_path") :])
    assert words[1] == hostile
    assert words[words.index("--init_word") + 1] == hostile
    assert not canary.exists()


def test_extra_kohya_args_are_written_and_never_replace_the_bundles_own(make_plan, export, tmp_path, logic):
    plan = dataclasses.replace(make_plan(), kohya_extra_args={"noise_offset": 0.05, "min_snr_gamma": 5.0})
    root = export(plan)
    args = tomllib.loads((root / "kohya/args.toml").read_text())
    assert args["extra"] == {"min_snr_gamma": 5.0, "noise_offset": 0.05}
    assert args["train"]["output_dir"].endswith("/output")

    clash = dataclasses.replace(make_plan(), kohya_extra_args={"output_dir": "/elsewhere"})
    dest = tmp_path / "clash"
    with pytest.raises(BundleError) as caught:
        write_bundle(clash, dest, logic=logic)
    assert [f.code for f in caught.value.findings] == ["L17"]
    assert "output_dir" in caught.value.findings[0].message


def test_file_checks_name_each_broken_file(make_plan, export, logic):
    """A12 and L10 by merging sorted streams (docs/export-bundle.md#checks): each problem once,
    with its file; items.jsonl need not be in file order."""
    root = export(make_plan(mirror="per_item", targets=("kohya", "diffusers")))
    lines = (root / "items.jsonl").read_text().splitlines(keepends=True)
    records = [json.loads(line) for line in lines]
    dropped, doubled, changed = records[0], records[1], records[2]
    changed_line = json.dumps({**changed, "sha256": "0" * 64}) + "\n"
    rest = [line for r, line in zip(records, lines, strict=True) if r not in (dropped, changed)]
    (root / "items.jsonl").write_text("".join([*reversed(rest), changed_line, lines[1]]))
    meta = root / "data/metadata.jsonl"
    rows = meta.read_text().splitlines(keepends=True)
    meta.write_text("".join(rows[1:]))
    first = json.loads(rows[0])["file_name"]
    found = [(f.code, f.message, f.item, f.path) for f in check_bundle(root, logic=logic) if is_error(f)]
    assert ("A12", "image listed twice in items.jsonl", doubled["id"], doubled["file"]) in found
    assert ("A12", "image not in items.jsonl", None, dropped["file"]) in found
    assert ("A12", "sha256 differs from items.jsonl", None, changed["file"]) in found
    assert ("L10", "image has no metadata.jsonl row", None, f"data/metadata.jsonl: {first}") in found
    assert len(found) == 4
    (root / dropped["file"]).unlink()
    (root / "items.jsonl").write_text("".join(lines))
    found = [(f.code, f.path) for f in check_bundle(root, logic=logic) if is_error(f)]
    assert ("A12", dropped["file"]) in found
