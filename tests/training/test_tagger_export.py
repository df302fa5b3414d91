"""The tagger-training target (docs/export-bundle.md#wd-tagger): a session on the seeded
`wd-tagger-convnext` profile exports through the real job path; `selected_tags.csv` and
`labels.csv` are checked value by value against the items' tags; L01 (an image without labels)
blocks, L18 (a rare label) warns; TI on a tagger profile stays refused."""

from __future__ import annotations

import csv
import io
import zipfile
from collections import Counter
from pathlib import Path

import pytest
from PIL import Image

from apps.core.exceptions import DomainError
from apps.training.bundle.check import check_bundle
from apps.training.logic import tagger
from apps.training.models import TrainingExport
from apps.training.services import exports, lint
from tests.training import factories as f

pytestmark = pytest.mark.django_db

TYPES = {
    "mychar": "character",
    "otherchar": "character",
    "someseries": "copyright",
    "someartist": "artist",
    "sensitive": "rating",
    "highres": "meta",  # meta is not exported by default: no label
    "long_hair": "general",
    "smile": "general",
    "snow": "general",
}
CATEGORY = {"character": 4, "copyright": 3, "artist": 1, "rating": 9, "general": 0}
TAGS = [
    ["mychar", "long_hair", "smile", "sensitive", "highres"],
    ["mychar", "smile", "snow", "sensitive", "someartist"],
    ["otherchar", "someseries", "smile", "long_hair"],
]


def _items(tag_lists, *, start=0):
    for name, key in TYPES.items():
        f.typed([name], key)
    return f.items(tag_lists, size=(900, 600), start=start)


def _csv(path: Path) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(path.read_text(encoding="utf-8"))))


def _export(session) -> TrainingExport:
    export = exports.export_start(session=session)
    exports.export_run(job_id=export.job_id)
    export.refresh_from_db()
    return export


def test_tagger_session_exports_images_and_wd_csvs(export_dir: Path) -> None:
    members = _items(TAGS)
    ds = f.dataset("Chars", members)
    session = f.session([ds], name="Char tagger", base_model="wd-tagger-convnext")
    assert session.targets == ["wd-tagger"]  # the profile's one trainer, by default
    export = _export(session)
    assert export.status == TrainingExport.Status.SUCCEEDED, (export.error_code, export.findings)
    root = Path(export.bundle_path) / "wd-tagger"

    expected = {}  # file name → labels, from the tags the items were given
    for item, tags in zip(members, TAGS, strict=True):
        expected[f"i{item.sha256[:12]}.png"] = [t for t in tags if TYPES[t] != "meta"]
    rows = _csv(root / "labels.csv")
    assert [r["image"] for r in rows] == [f"images/{n}" for n in sorted(expected)]
    for row in rows:
        assert sorted(row["tags"].split(" ")) == sorted(expected[row["image"].removeprefix("images/")])
        with Image.open(root / row["image"]) as im:
            assert im.size == (448, 448)  # resized to the profile's 448 px bucket

    counts = Counter(t for labels in expected.values() for t in labels)
    selected = _csv(root / "selected_tags.csv")
    assert (root / "selected_tags.csv").read_text().splitlines()[0] == "tag_id,name,category,count"
    assert {r["name"]: (int(r["category"]), int(r["count"])) for r in selected} == {
        name: (CATEGORY[TYPES[name]], n) for name, n in counts.items()
    }
    assert [int(r["tag_id"]) for r in selected] == list(range(len(selected)))
    order = [(int(r["category"]) != 9, int(r["category"]), -int(r["count"]), r["name"]) for r in selected]
    assert order == sorted(order)  # ratings first, then category, count descending
    assert selected[0]["name"] == "sensitive"
    assert [r["name"] for r in selected if r["category"] == "0"] == ["smile", "long_hair", "snow"]

    # No caption files: no caption renderer is targeted; every rare label is an L18 warning.
    data = Path(export.bundle_path) / "data"
    assert not [p for p in data.rglob("*") if p.suffix in (".caption", ".txt")]
    l18 = {r["where"].rsplit(":", 1)[1] for r in export.findings if r["id"] == "L18"}
    assert l18 == set(counts)
    assert "wd-tagger" in (Path(export.bundle_path) / "README.md").read_text()
    report = (Path(export.bundle_path) / "EXPORT_REPORT.md").read_text()
    section = report.split("## wd-tagger\n", 1)[1]
    assert section.startswith(f"\n3 images in `wd-tagger/images/`, {len(counts)} labels")
    categories = Counter(CATEGORY[TYPES[name]] for name in counts)
    for category, n in categories.items():
        assert f"| {category} | {n} |" in section


def test_the_same_picture_in_two_datasets_is_one_row(export_dir: Path) -> None:
    members = _items(TAGS[:2])
    session = f.session(
        [f.dataset("A", members), f.dataset("B", members[:1])], name="Twice", base_model="wd-tagger-convnext"
    )
    export = _export(session)
    assert export.status == TrainingExport.Status.SUCCEEDED, export.findings
    root = Path(export.bundle_path) / "wd-tagger"
    assert len(_csv(root / "labels.csv")) == 2
    counts = {r["name"]: int(r["count"]) for r in _csv(root / "selected_tags.csv")}
    assert counts["mychar"] == 2
    assert counts["long_hair"] == 1


def test_an_image_without_labels_is_l01_in_lint_and_blocks_the_export(export_dir: Path) -> None:
    members = _items([["mychar", "smile"], ["highres"]])  # the second has only a non-exported type
    session = f.session([f.dataset("Chars", members)], name="Bare", base_model="wd-tagger-convnext")
    found = lint.session_lint(session)["findings"]
    bare = f"i{members[1].sha256[:12]}"
    assert [r for r in found if r["id"] == "L01"] == [
        {
            "id": "L01",
            "severity": "E",
            "message": tagger.lint_labels([], item=bare)[0].message,
            "where": bare,
        }
    ]
    assert {r["severity"] for r in found if r["id"] == "L18"} == {"W"}
    export = _export(session)
    assert export.status == TrainingExport.Status.FAILED
    assert "L01" in {r["id"] for r in export.findings}
    assert not export.bundle_path
    assert not [p for p in export_dir.rglob("*") if ".tmp-" in p.name]


def test_a_label_on_enough_images_is_not_l18() -> None:
    rows = tagger.selected_rows({("smile", 0): 10, ("snow", 0): 9, ("snow", 4): 1})
    assert rows == [(0, "smile", 0, 10), (1, "snow", 0, 9)]
    assert [x.code for x in tagger.lint_counts(rows)] == ["L18"]
    assert tagger.lint_counts(rows, min_images=9) == []


def test_textual_inversion_on_a_tagger_profile_is_still_refused() -> None:
    from apps.training.services.textual_inversions import ti_create

    ds = f.dataset("Chars", _items(TAGS[:1]))
    with pytest.raises(DomainError) as caught:
        ti_create(
            name="Tagger TI",
            base_model="wd-tagger-convnext",
            token="mychrtok",
            init_word="girl",
            dataset=ds.pk,
            targets=["kohya"],
        )
    assert caught.value.code in ("training.bad_base_model", "training.unsupported_target")


def test_file_checks_catch_broken_tagger_files(export_dir: Path, tmp_path: Path) -> None:
    import shutil

    session = f.session([f.dataset("Chars", _items(TAGS))], name="Checked", base_model="wd-tagger-convnext")
    export = _export(session)
    assert check_bundle(Path(export.bundle_path)) == []

    def broken(change) -> set[tuple[str, str]]:
        copy = tmp_path / f"copy{len(list(tmp_path.iterdir()))}"
        shutil.copytree(export.bundle_path, copy)
        change(copy / "wd-tagger")
        return {(x.code, x.message) for x in check_bundle(copy)}

    def drop_row(root: Path) -> None:
        lines = (root / "labels.csv").read_text().splitlines(keepends=True)
        (root / "labels.csv").write_text("".join(lines[:-1]))

    found = broken(drop_row)
    assert ("L10", "image has no labels.csv row") in found
    assert any(code == "L10" and "tag_id or count" in message for code, message in found)

    def stray(root: Path) -> None:
        (root / "images" / "notes.txt").write_text("x")

    assert {code for code, _ in broken(stray)} == {"L12"}

    def reorder(root: Path) -> None:
        lines = (root / "selected_tags.csv").read_text().splitlines(keepends=True)
        (root / "selected_tags.csv").write_text("".join([lines[0], *reversed(lines[1:])]))

    assert ("L10", "rows not in WD order (ratings, category, count)") in broken(reorder)

    def escape(root: Path) -> None:
        text = (root / "labels.csv").read_text().replace("images/i", "images/../i", 1)
        (root / "labels.csv").write_text(text)

    assert any("expected images/" in message for _, message in broken(escape))


def test_tagger_re_export_is_byte_identical_files_and_zip(export_dir: Path) -> None:
    from apps.datasets.services.snapshots import snapshot_create

    ds = f.dataset("Chars", _items(TAGS))
    pinned = snapshot_create(dataset=ds)
    session = f.session(
        [{"dataset": ds.pk, "snapshot": pinned.pk}], name="Again", base_model="wd-tagger-convnext"
    )
    first = exports.export_sync(session=session)
    second = exports.export_sync(session=session)

    def files(root: str) -> dict[str, bytes]:
        base = Path(root)
        return {str(p.relative_to(base)): p.read_bytes() for p in sorted(base.rglob("*")) if p.is_file()}

    assert files(first.bundle_path) == files(second.bundle_path)
    assert any(name.startswith("wd-tagger/images/") for name in files(first.bundle_path))
    assert b"".join(exports.export_zip_stream(first)[1]) == b"".join(exports.export_zip_stream(second)[1])


def test_tagger_sessions_through_the_api(export_dir: Path) -> None:
    from django.contrib.auth.models import Permission, User
    from rest_framework.test import APIClient

    user = User.objects.create_user("trainer", password="pw-trainer-123")
    user.user_permissions.add(*Permission.objects.filter(content_type__app_label="training"))
    client = APIClient()
    client.force_authenticate(User.objects.get(pk=user.pk))
    ds = f.dataset("Chars", _items(TAGS[:1]))
    body = {"name": "Api tagger", "base_model": "wd-tagger-convnext", "datasets": [{"dataset": ds.pk}]}
    refused = client.post("/api/training-sessions", {**body, "targets": ["kohya"]}, format="json")
    assert refused.status_code == 400
    assert refused.json()["code"] == "training.unsupported_target"
    created = client.post("/api/training-sessions", body, format="json")
    assert created.status_code == 201, created.json()
    assert created.json()["targets"] == ["wd-tagger"]
    started = client.post(f"/api/training-sessions/{created.json()['id']}/export", {}, format="json")
    assert started.status_code == 202, started.json()
    exports.export_run(job_id=started.json()["job"]["id"])
    export = TrainingExport.objects.get(pk=started.json()["export"]["id"])
    assert export.status == TrainingExport.Status.SUCCEEDED
    download = client.get(f"/api/training-exports/{export.pk}/download")
    names = zipfile.ZipFile(io.BytesIO(b"".join(download.streaming_content))).namelist()
    assert any(n.endswith("wd-tagger/selected_tags.csv") for n in names)
    assert any(n.endswith("wd-tagger/labels.csv") for n in names)
