"""The deterministic streamed zip on plain folders."""

from __future__ import annotations

import glob
import io
import tempfile
import zipfile

from apps.training.bundle import sorting, zipstream


def _folder(tmp_path):
    root = tmp_path / "b"
    (root / "scripts").mkdir(parents=True)
    (root / "data/p").mkdir(parents=True)
    (root / "scripts/relocate.py").write_text("print('x')\n")
    (root / "data/p/ia.caption").write_text("é, tag\n" * 50)
    (root / "data/p/ia.png").write_bytes(bytes(range(256)) * 40)
    (root / "README.md").write_text("")
    return root


def test_entries_sorted_stored_and_deflated(tmp_path):
    root = _folder(tmp_path)
    data = b"".join(zipstream.zip_stream(root, prefix="bundle/"))
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        infos = zf.infolist()
        assert [i.filename for i in infos] == sorted(i.filename for i in infos)
        kinds = {i.filename: i.compress_type for i in infos}
        assert kinds["bundle/data/p/ia.png"] == zipfile.ZIP_STORED
        assert kinds["bundle/data/p/ia.caption"] == zipfile.ZIP_DEFLATED
        assert zf.read("bundle/data/p/ia.caption") == (root / "data/p/ia.caption").read_bytes()
        assert zf.read("bundle/README.md") == b""
        assert zf.getinfo("bundle/scripts/relocate.py").external_attr >> 16 == 0o100755
    assert data == b"".join(zipstream.zip_stream(root, prefix="bundle/"))


def test_zip64_end_records_when_there_are_many_entries(tmp_path, monkeypatch):
    root = _folder(tmp_path)
    monkeypatch.setattr(zipstream, "MAX_ENTRIES", 2)
    data = b"".join(zipstream.zip_stream(root))
    assert b"PK\x06\x06" in data
    assert b"PK\x06\x07" in data
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        assert zf.testzip() is None
        assert len(zf.namelist()) == 4


def test_lazy_walk_orders_entries_like_a_sort_of_full_names(tmp_path):
    """Folders are listed one at a time; `a/…` still sorts after `a.txt` and `a-b/…` (byte order)."""
    root = tmp_path / "t"
    names = ["a.txt", "a/b.txt", "a-b/c.json", "a/c/d.png", "ab", "A", "é/x.md", "a.b/z", "a/b-c.py"]
    for rel in names:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(rel * 3)
    (root / "empty").mkdir()
    data = b"".join(zipstream.zip_stream(root, prefix="p/"))
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        assert zf.namelist() == sorted((f"p/{n}" for n in names), key=lambda n: n.encode())
        assert zf.testzip() is None
        assert all(zf.read(f"p/{n}") == (n * 3).encode() for n in names)


def test_spilled_listing_and_directory_give_the_same_zip(tmp_path, monkeypatch):
    """Past the in-memory limits (names per listing, central-directory bytes) the zip streams
    through temp files and its bytes do not change; the temp files are gone afterwards."""
    root = tmp_path / "t"
    names = [f"data/p/i{k:03d}.{ext}" for k in range(40) for ext in ("png", "caption")]
    names += ["README.md", "data/metadata.jsonl", "é/ü.txt", "data/p-q/z.txt"]
    for rel in names:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(rel)
    in_memory = b"".join(zipstream.zip_stream(root))
    monkeypatch.setattr(zipstream, "SPILL", 100)
    monkeypatch.setattr(sorting, "RUN", 7)
    spills = set(glob.glob(f"{tempfile.gettempdir()}/bundle-sort-*"))
    stream = zipstream.zip_stream(root)
    first = next(stream)
    spilled = first + b"".join(stream)
    assert spilled == in_memory
    assert set(glob.glob(f"{tempfile.gettempdir()}/bundle-sort-*")) == spills
    with zipfile.ZipFile(io.BytesIO(spilled)) as zf:
        assert zf.namelist() == sorted(names, key=lambda n: n.encode())
        assert zf.testzip() is None
