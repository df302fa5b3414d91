"""Focus boxes in exports and kohya loss masks (docs/training.md#focus-boxes,
docs/export-bundle.md#masks): the plan reads the media item's box, items.jsonl carries it,
`crop = focus` squares centre on it, masks are white inside it at the written file's size.
Runs on SQLite and on MariaDB."""

from __future__ import annotations

import io
import json
import tomllib
from pathlib import Path

import pytest
from PIL import Image

from apps.core.exceptions import DomainError
from apps.media import services as media_services
from apps.training import upstream
from apps.training.models import TrainingExport
from apps.training.services import exports, lint
from tests.media.factories import make_item
from tests.training import factories as f

pytestmark = pytest.mark.django_db
RED, BLUE = (220, 20, 20), (20, 20, 220)


def halves(size: tuple[int, int], left: tuple[int, int, int], right: tuple[int, int, int]) -> bytes:
    """A PNG whose left half is one colour and right half another."""
    image = Image.new("RGB", size, left)
    image.paste(right, (size[0] // 2, 0, size[0], size[1]))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def _is(pixel: tuple[int, ...], colour: tuple[int, int, int]) -> bool:
    return all(abs(a - b) <= 12 for a, b in zip(pixel[:3], colour, strict=True))


def _records(folder: Path) -> dict[int, dict]:
    rows = [json.loads(line) for line in (folder / "items.jsonl").read_text().splitlines()]
    return {row["source"]["media_id"]: row for row in rows}


def test_focus_moves_the_crop_and_reaches_items_jsonl() -> None:
    """TI sets crop around the focus (EXPORT-FORMATS §8.4): the same item, exported before and
    after its focus box is set on its right edge, gives a centred then a right-hand square."""
    from apps.training.services.textual_inversions import ti_create

    wide = make_item(["mychar", "smile"], data=halves((1000, 500), RED, BLUE))
    other = make_item(["mychar", "snow"], data=halves((500, 1000), BLUE, RED))
    ds = f.dataset("Mychar", [wide, other])
    ti = ti_create(name="Mychar TI", base_model="sd15", token="mychrtok", init_word="girl", dataset=ds.pk)

    def square_of(folder: Path) -> Image.Image:
        record = _records(folder)[wide.pk]
        return Image.open(folder / "ti" / "mychrtok" / "images" / f"{record['id']}.png").convert("RGB")

    before = exports.export_sync(textual_inversion=ti)
    assert before.status == TrainingExport.Status.SUCCEEDED, before.findings
    centred = square_of(Path(before.bundle_path))
    side = centred.size[0]
    assert centred.size == (side, side)
    assert _is(centred.getpixel((side // 8, side // 2)), RED)
    assert _is(centred.getpixel((side * 7 // 8, side // 2)), BLUE)
    assert _records(Path(before.bundle_path))[wide.pk]["focus"] is None

    media_services.media_item_set_focus(item=wide, focus=[0.8, 0.2, 0.95, 0.8])
    after = exports.export_sync(textual_inversion=ti)
    folder = Path(after.bundle_path)
    moved = square_of(folder)
    assert _is(moved.getpixel((side // 8, side // 2)), BLUE)  # the square slid right, clamped
    assert _is(moved.getpixel((side * 7 // 8, side // 2)), BLUE)
    records = _records(folder)
    assert records[wide.pk]["focus"] == [0.8, 0.2, 0.95, 0.8]
    assert records[other.pk]["focus"] is None
    assert '"focus":[0.8,0.2,0.95,0.8]' in (folder / "items.jsonl").read_text()


def test_mirrored_copies_carry_the_mirrored_focus() -> None:
    item = make_item(["hand_on_left_hip"], data=halves((600, 400), RED, BLUE))
    media_services.media_item_set_focus(item=item, focus=[0.1, 0.2, 0.3, 0.9])
    session = f.session(
        [f.dataset("Poses", [item])],
        name="Poses",
        targets=["kohya"],
        mirror="per_item",
        underscores_to_spaces=True,
    )
    export = exports.export_sync(session=session)
    rows = [json.loads(line) for line in (Path(export.bundle_path) / "items.jsonl").read_text().splitlines()]
    by_copy = {row["mirror_of"] is not None: row["focus"] for row in rows}
    assert by_copy == {False: [0.1, 0.2, 0.3, 0.9], True: [0.7, 0.2, 0.9, 0.9]}


def test_kohya_masks_follow_the_focus_box_through_the_bucket_crop() -> None:
    wide = make_item(["mychar", "smile"], data=halves((1000, 500), RED, BLUE))
    boxless = make_item(["mychar", "snow"], data=halves((700, 900), BLUE, RED))
    media_services.media_item_set_focus(item=wide, focus=[0.5, 0.0, 1.0, 1.0])  # the blue half
    session = f.session([f.dataset("Mychar", [wide, boxless])], targets=["kohya"], kohya_masks="focus")
    export = exports.export_sync(session=session)
    assert export.status == TrainingExport.Status.SUCCEEDED, export.findings
    folder = Path(export.bundle_path)
    records = _records(folder)
    images = sorted(p for p in (folder / "data").rglob("*") if p.suffix in (".png", ".jpg", ".webp"))
    assert len(images) == 2
    for image_path in images:  # one mask per image, same name, same size
        partition = image_path.parent.name
        mask_path = folder / "masks" / partition / f"{image_path.stem}.png"
        assert mask_path.is_file(), mask_path
        with Image.open(image_path) as picture, Image.open(mask_path) as mask:
            assert mask.size == picture.size
            assert mask.mode == "L"
    assert not list((folder / "data").rglob("masks"))  # never under data/
    wide_file = folder / records[wide.pk]["file"]
    picture = Image.open(wide_file).convert("RGB")
    mask = Image.open(folder / "masks" / records[wide.pk]["partition"] / f"{wide_file.stem}.png")
    assert picture.size != (1000, 500)  # resized and cropped to its bucket
    width, height = mask.size
    for x in range(0, width, 7):  # white exactly where the (blue) focus half is, away from the seam
        colour = picture.getpixel((x, height // 2))
        if _is(colour, BLUE):
            assert mask.getpixel((x, height // 2)) == 255, x
        elif _is(colour, RED):
            assert mask.getpixel((x, height // 2)) == 0, x
    assert mask.getbbox() is not None
    assert mask.getbbox()[2] == width
    boxless_mask = (
        folder / "masks" / records[boxless.pk]["partition"] / f"{Path(records[boxless.pk]['file']).stem}.png"
    )
    assert Image.open(boxless_mask).getextrema() == (255, 255)  # no box: train everywhere

    doc = tomllib.loads((folder / "kohya" / "dataset.toml").read_text())
    subsets = doc["datasets"][0]["subsets"]
    assert all(s["conditioning_data_dir"].endswith(f"/masks/{Path(s['image_dir']).name}") for s in subsets)
    assert upstream.kohya_dataset_problems(doc, support_dropout=True, masked=True) == []
    assert (
        upstream.kohya_dataset_problems(doc, support_dropout=True, masked=False) != []
    )  # needs --masked_loss
    args = tomllib.loads((folder / "kohya" / "args.toml").read_text())
    assert args["train"]["masked_loss"] is True
    assert json.loads((folder / "session.json").read_text())["export"]["kohya_masks"] == "focus"


def test_masked_re_export_is_byte_identical() -> None:
    from apps.datasets.services.snapshots import snapshot_create

    wide = make_item(["mychar"], data=halves((1000, 500), RED, BLUE))
    media_services.media_item_set_focus(item=wide, focus=[0.3, 0.1, 0.9, 0.7])
    ds = f.dataset("Mychar", [wide, *f.items([["mychar", "snow"]])])
    pinned = snapshot_create(dataset=ds)
    session = f.session(
        [{"dataset": ds.pk, "snapshot": pinned.pk}],
        targets=["kohya", "diffusers"],
        crop="focus",
        kohya_masks="focus",
    )
    first, second = exports.export_sync(session=session), exports.export_sync(session=session)

    def files(root: str) -> dict[str, bytes]:
        base = Path(root)
        return {str(p.relative_to(base)): p.read_bytes() for p in sorted(base.rglob("*")) if p.is_file()}

    assert any(name.startswith("masks/") for name in files(first.bundle_path))
    assert files(first.bundle_path) == files(second.bundle_path)


def test_masks_with_regularisation_are_an_l15_error() -> None:
    ds = f.dataset("Mychar", f.items([["mychar", "smile"]]))
    reg = f.dataset("Reg", f.items([["x"]], start=9))
    session = f.session(
        [ds, {"dataset": reg.pk, "role": "regularization"}], targets=["kohya"], kohya_masks="focus"
    )
    found = lint.session_lint(session)["findings"]
    masks = [row for row in found if row["id"] == "L15" and "loss masks" in row["message"]]
    assert masks
    assert masks[0]["severity"] == "E"
    with pytest.raises(DomainError) as caught:  # export blocked before any file is written
        exports.export_sync(session=session)
    assert caught.value.code == "training.lint_failed"


def test_masked_loss_without_masks_is_an_l15_error_and_with_them_is_clean() -> None:
    """--masked_loss with subsets that have no masks is "masked with unmasked subsets" (L15)."""
    ds = f.dataset("Mychar", f.items([["mychar", "smile"]]))
    bare = f.session([ds], targets=["kohya"], masked_loss=True)
    found = [r for r in lint.session_lint(bare)["findings"] if r["id"] == "L15"]
    assert [r["severity"] for r in found] == ["E"]
    assert "kohya_masks" in found[0]["message"]
    masked = f.session([ds], name="Masked", targets=["kohya"], masked_loss=True, kohya_masks="focus")
    assert "L15" not in {r["id"] for r in lint.session_lint(masked)["findings"]}


def test_kohya_masks_setting_is_checked() -> None:
    ds = f.dataset("Mychar", f.items([["mychar"]]))
    with pytest.raises(DomainError) as caught:
        f.session([ds], kohya_masks="alpha")
    assert "kohya_masks" in caught.value.message
