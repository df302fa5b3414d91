"""Zip archives are judged as a whole before anything is staged: hostile ones leave nothing behind."""

from __future__ import annotations

import bz2
import gzip
import io
import struct
import time
import tracemalloc
import zipfile

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from apps.jobs.models import Job
from apps.media.exceptions import ArchiveError, ArchiveTooLargeError
from apps.media.models import MediaItem
from apps.media.services.archives import ArchiveMember, archive_members
from tests import mediafiles
from tests.conftest import stored_files

JPEG = mediafiles.image_bytes("jpeg", seed=21)
PNG = mediafiles.image_bytes("png", seed=22)
ZEROS_5MB = bytes(5 * 1024 * 1024)


def _patch_headers(data: bytes, *, flag_bits: int = 0, method: int | None = None) -> bytes:
    """Set general-purpose flag bits and/or the compression method in every header of a zip.

    zipfile writes neither encrypted members nor unknown methods, so the bytes are edited: the
    local header (PK\\x03\\x04) has flags at +6 and method at +8, the central directory entry
    (PK\\x01\\x02) has them at +8 and +10.
    """
    out = bytearray(data)
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        locals_ = [info.header_offset for info in zf.infolist()]
        central = zf.start_dir  # type: ignore[attr-defined]
        count = len(zf.infolist())
    for offset in locals_:
        assert out[offset : offset + 4] == b"PK\x03\x04"
        _patch(out, offset + 6, flag_bits, method)
    for _ in range(count):
        assert out[central : central + 4] == b"PK\x01\x02"
        _patch(out, central + 8, flag_bits, method)
        name_len, extra_len, comment_len = struct.unpack_from("<HHH", out, central + 28)
        central += 46 + name_len + extra_len + comment_len
    return bytes(out)


def _patch(out: bytearray, at: int, flag_bits: int, method: int | None) -> None:
    (flags,) = struct.unpack_from("<H", out, at)
    struct.pack_into("<H", out, at, flags | flag_bits)
    if method is not None:
        struct.pack_into("<H", out, at + 2, method)


def deflated_zip(members: dict[str, bytes]) -> bytes:
    """A zip whose members are really compressed (mediafiles.zip_bytes stores them as they are)."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return out.getvalue()


def crafted_entries(count: int, *, zip64: bool = False) -> bytes:
    """A zip of `count` empty entries that is only a central directory and its end records.

    Tiny per entry (~57 bytes): the shape of an archive meant to exhaust memory while zipfile
    lists it. zipfile reads it as a valid zip (see the test below).
    """
    directory = bytearray()
    for i in range(count):
        name = b"%07d.jpg" % i
        directory += (
            _CENTRAL.pack(b"PK\x01\x02", 20, 3, 20, 0, 0, 0, 0, 0, 0, 0, 0, len(name), 0, 0, 0, 0, 0, 0)
            + name
        )
    end = bytearray()
    if zip64:
        end += struct.pack("<4sQ2H2L4Q", b"PK\x06\x06", 44, 45, 45, 0, 0, count, count, len(directory), 0)
        end += struct.pack("<4sLQL", b"PK\x06\x07", 0, len(directory), 1)
        short, size = 0xFFFF, 0xFFFFFFFF
    else:
        short, size = min(count, 0xFFFF), len(directory)
    end += struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, short, short, size, 0xFFFFFFFF if zip64 else 0, 0)
    return bytes(directory + end)


_CENTRAL = struct.Struct("<4s4B4HL2L5H2L")


def members_of(data: bytes) -> list[ArchiveMember]:
    return archive_members(io.BytesIO(data))


def refused(data: bytes, error: type[ArchiveError] | type[ArchiveTooLargeError] = ArchiveError):
    with pytest.raises(error) as info:
        members_of(data)
    return info.value


# --------------------------------------------------------------------------------------------
# archive_members
# --------------------------------------------------------------------------------------------


def test_archive_members_lists_files_with_sizes_and_skips_directories():
    data = mediafiles.zip_bytes(
        {
            "set/": b"",
            "set/a.jpg": JPEG,
            "set/deeper/": b"",
            "set/deeper/b.png": PNG,
            "notes.txt": b"",
            "c d é.jpg": JPEG,
        }
    )
    stream = io.BytesIO(data)
    members = archive_members(stream)
    assert members == [
        ArchiveMember(index=1, name="set/a.jpg", size=len(JPEG)),
        ArchiveMember(index=3, name="set/deeper/b.png", size=len(PNG)),
        ArchiveMember(index=4, name="notes.txt", size=0),
        ArchiveMember(index=5, name="c d é.jpg", size=len(JPEG)),
    ]
    # The caller stages the same stream afterwards: it must still be open and readable.
    assert not stream.closed
    stream.seek(0)
    assert stream.read() == data


def test_archive_members_indexes_point_at_the_right_members():
    data = mediafiles.zip_bytes({"d/": b"", "a.jpg": JPEG, "b.png": PNG})
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        infos = zf.infolist()
        for member in members_of(data):
            assert zf.read(infos[member.index]) == {"a.jpg": JPEG, "b.png": PNG}[member.name]


@pytest.mark.parametrize(
    ("name", "says"),
    [
        ("../evil.jpg", "points outside the archive"),
        ("a/../../evil.jpg", "points outside the archive"),
        ("a\\..\\..\\evil.jpg", "points outside the archive"),
        ("ok/../", "points outside the archive"),
        ("/etc/passwd", "has an absolute path"),
        ("\\\\server\\share\\evil.jpg", "has an absolute path"),
        ("C:\\evil.jpg", "has an absolute path"),
        ("c:evil.jpg", "has an absolute path"),
    ],
)
def test_archive_members_refuses_paths_that_leave_the_archive(name, says):
    data = mediafiles.zip_bytes({"fine.jpg": JPEG, name: JPEG})
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        assert zf.namelist()[1] == name  # stored verbatim, not cleaned by zipfile
    err = refused(data)
    assert (err.code, err.status_code) == ("media.bad_archive", 400)
    assert says in err.message
    assert repr(name) in err.message
    assert "the archive was not imported" in err.message
    assert err.details == {"member": name}


def test_archive_members_refuses_symlinks():
    data = mediafiles.zip_bytes({"a.jpg": JPEG}, symlinks={"b.jpg": "/etc/passwd"})
    err = refused(data)
    assert (err.code, err.status_code) == ("media.bad_archive", 400)
    assert "'b.jpg' is a symbolic link" in err.message
    assert err.details == {"member": "b.jpg"}


def test_archive_members_refuses_encrypted_members():
    data = _patch_headers(mediafiles.zip_bytes({"secret.jpg": JPEG}), flag_bits=0x1)
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        assert zf.infolist()[0].flag_bits & 0x1
    err = refused(data)
    assert err.code == "media.bad_archive"
    assert "'secret.jpg' is encrypted" in err.message


def test_archive_members_reports_members_it_cannot_decompress():
    data = _patch_headers(mediafiles.zip_bytes({"odd.jpg": JPEG}), method=99)  # 99: AES
    err = refused(data)
    assert err.code == "media.bad_archive"
    assert "'odd.jpg' cannot be read" in err.message


@pytest.mark.parametrize(
    "name",
    ["inner.zip", "INNER.ZIP", "x.tar.gz", "x.tgz", "x.7z", "x.rar", "x.tar", "x.bz2", "x.xz", "x.zst"],
)
def test_archive_members_refuses_nested_archives_by_name(name):
    data = mediafiles.zip_bytes({"a.jpg": JPEG, name: b"whatever is inside"})
    err = refused(data)
    assert (err.code, err.status_code) == ("media.bad_archive", 400)
    assert "is itself an archive (nested archives are refused)" in err.message
    assert err.details == {"member": name}


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("holiday.jpg", mediafiles.zip_bytes({"inner.jpg": JPEG})),  # PK\x03\x04
        ("holiday.png", mediafiles.zip_bytes({})),  # empty zip: PK\x05\x06
        ("holiday.webp", gzip.compress(JPEG)),  # gzip
        ("holiday.gif", bz2.compress(JPEG)),  # bzip2
    ],
)
def test_archive_members_refuses_nested_archives_by_magic_bytes(name, content):
    data = mediafiles.zip_bytes({"a.jpg": JPEG, name: content})
    err = refused(data)
    assert err.code == "media.bad_archive"
    assert f"{name!r} is itself an archive" in err.message


def test_archive_members_refuses_too_many_members(settings):
    settings.BAGGINTAG_MAX_ARCHIVE_MEMBERS = 3
    assert len(members_of(mediafiles.zip_bytes({f"{i}.jpg": JPEG for i in range(3)}))) == 3
    err = refused(mediafiles.zip_bytes({f"{i}.jpg": JPEG for i in range(4)}), ArchiveTooLargeError)
    assert (err.code, err.status_code) == ("media.archive_too_large", 413)
    assert err.message == (
        "The archive has more than 3 entries (folders count too); split it into zips of at most 3."
    )
    # Folders are entries too: they cost the same to list.
    refused(mediafiles.zip_bytes({"a/": b"", "b/": b"", "c/": b"", "d.jpg": JPEG}), ArchiveTooLargeError)


@pytest.mark.parametrize("zip64", [False, True], ids=["zip", "zip64"])
def test_archive_members_counts_entries_exactly_at_the_limit(settings, zip64):
    data = crafted_entries(5, zip64=zip64)
    with zipfile.ZipFile(io.BytesIO(data)) as zf:  # a zip that zipfile itself accepts
        assert len(zf.infolist()) == 5
    settings.BAGGINTAG_MAX_ARCHIVE_MEMBERS = 5
    assert [m.name for m in members_of(data)] == [f"{i:07d}.jpg" for i in range(5)]
    settings.BAGGINTAG_MAX_ARCHIVE_MEMBERS = 4
    refused(data, ArchiveTooLargeError)


@pytest.mark.parametrize("wrap", ["comment", "prefix"])
def test_archive_members_counts_entries_behind_comments_and_prefixes(settings, wrap):
    # A long archive comment after the end record; a self-extractor stub before the zip.
    out = io.BytesIO()
    if wrap == "prefix":
        out.write(b"MZ" + b"\x00" * 4094)
    with zipfile.ZipFile(out, "a" if wrap == "prefix" else "w") as zf:
        for i in range(4):
            zf.writestr(f"{i}.jpg", JPEG)
        if wrap == "comment":
            zf.comment = b"made by a scanner; " * 1000
    data = out.getvalue()
    settings.BAGGINTAG_MAX_ARCHIVE_MEMBERS = 4
    assert len(members_of(data)) == 4
    settings.BAGGINTAG_MAX_ARCHIVE_MEMBERS = 3
    refused(data, ArchiveTooLargeError)


@pytest.mark.parametrize("zip64", [False, True], ids=["zip", "zip64"])
def test_archive_members_refuses_millions_of_entries_without_listing_them(settings, zip64):
    # 200,000 empty entries in 11 MB: listing them all with zipfile takes ~100 MB and seconds;
    # the refusal must come from counting, in a fraction of that.
    data = crafted_entries(200_000, zip64=zip64)
    settings.BAGGINTAG_MAX_ARCHIVE_MEMBERS = 10_000
    tracemalloc.start()
    started = time.monotonic()
    try:
        err = refused(data, ArchiveTooLargeError)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 10 * 1024 * 1024, f"{peak:,} bytes allocated to refuse the archive"
    assert time.monotonic() - started < 5.0
    assert err.code == "media.archive_too_large"
    assert "more than 10,000 entries" in err.message


def test_archive_members_refuses_too_many_bytes_in_total(settings):
    settings.BAGGINTAG_MAX_ARCHIVE_BYTES = 2 * len(JPEG)
    assert len(members_of(mediafiles.zip_bytes({"a.jpg": JPEG, "b.jpg": JPEG}))) == 2
    err = refused(mediafiles.zip_bytes({"a.jpg": JPEG, "b.jpg": JPEG, "c.txt": b"x"}), ArchiveTooLargeError)
    assert (err.code, err.status_code) == ("media.archive_too_large", 413)
    assert f"expands to more than {2 * len(JPEG):,} bytes" in err.message


def test_archive_members_refuses_bomb_like_compression_ratios(settings):
    assert settings.BAGGINTAG_MAX_ARCHIVE_RATIO == 100
    data = deflated_zip({"a.jpg": JPEG, "zeros.bmp": ZEROS_5MB})
    assert len(data) < 20_000  # ~1000× smaller than what it expands to
    err = refused(data, ArchiveTooLargeError)
    assert (err.code, err.status_code) == ("media.archive_too_large", 413)
    assert "'zeros.bmp' expands" in err.message
    assert "limit 100×" in err.message
    assert "looks like a zip bomb" in err.message
    assert err.details == {"member": "zeros.bmp"}


def test_archive_members_ratio_limit_follows_the_setting(settings):
    settings.BAGGINTAG_MAX_ARCHIVE_RATIO = 5000
    data = deflated_zip({"zeros.bmp": ZEROS_5MB})
    assert members_of(data) == [ArchiveMember(index=0, name="zeros.bmp", size=len(ZEROS_5MB))]


def test_archive_members_ignores_the_ratio_of_small_members():
    # 512 kB of zeros compresses ~1000× too, but a member this small cannot hurt.
    small = bytes(512 * 1024)
    assert members_of(deflated_zip({"small.bmp": small}))[0].size == len(small)


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"not a zip at all",
        JPEG,
        mediafiles.zip_bytes({"a.jpg": JPEG})[:200],  # cut off before the central directory
        b"PK\x03\x04" + b"\x00" * 100,
    ],
    ids=["empty-file", "text", "jpeg", "truncated-zip", "bare-magic"],
)
def test_archive_members_refuses_what_is_not_a_zip(data):
    err = refused(data)
    assert (err.code, err.status_code) == ("media.bad_archive", 400)
    assert err.message == "The archive is not a valid zip file."


@pytest.mark.parametrize("entries", [{}, {"only/": b"", "dirs/": b""}], ids=["no-entries", "only-dirs"])
def test_archive_members_refuses_archives_without_files(entries):
    err = refused(mediafiles.zip_bytes(entries))
    assert (err.code, err.status_code) == ("media.bad_archive", 400)
    assert err.message == "The archive contains no files."


# --------------------------------------------------------------------------------------------
# Through the API: nothing is staged
# --------------------------------------------------------------------------------------------


def _post_archive(api, data: bytes, **fields: object):
    upload = SimpleUploadedFile("upload.zip", data, content_type="application/zip")
    return api.post("/api/media/upload-bulk", {"archive": upload, **fields}, format="multipart")


HOSTILE = {
    "traversal": (mediafiles.zip_bytes({"a.jpg": JPEG, "../evil.jpg": JPEG}), 400, "media.bad_archive"),
    "absolute": (mediafiles.zip_bytes({"a.jpg": JPEG, "/etc/passwd": JPEG}), 400, "media.bad_archive"),
    "windows": (mediafiles.zip_bytes({"a.jpg": JPEG, "C:\\evil.jpg": JPEG}), 400, "media.bad_archive"),
    "symlink": (
        mediafiles.zip_bytes({"a.jpg": JPEG}, symlinks={"l.jpg": "/etc/passwd"}),
        400,
        "media.bad_archive",
    ),
    "encrypted": (
        _patch_headers(mediafiles.zip_bytes({"a.jpg": JPEG}), flag_bits=0x1),
        400,
        "media.bad_archive",
    ),
    "nested-name": (mediafiles.zip_bytes({"a.jpg": JPEG, "b.zip": b"x"}), 400, "media.bad_archive"),
    "nested-magic": (
        mediafiles.zip_bytes({"a.jpg": JPEG, "b.jpg": mediafiles.zip_bytes({"c.jpg": JPEG})}),
        400,
        "media.bad_archive",
    ),
    "not-a-zip": (b"this is not a zip", 400, "media.bad_archive"),
    "empty-zip": (mediafiles.zip_bytes({}), 400, "media.bad_archive"),
    "bomb": (deflated_zip({"a.jpg": JPEG, "zeros.bmp": ZEROS_5MB}), 413, "media.archive_too_large"),
}


@pytest.mark.django_db
@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_api_upload_bulk_refuses_hostile_archives_and_stages_nothing(api, media_root, case):
    data, status, code = HOSTILE[case]
    response = _post_archive(api, data, tags=["x"], tag_source="test")
    assert response.status_code == status, response.content
    body = response.json()
    assert set(body) == {"code", "message", "details"}
    assert body["code"] == code
    assert body["message"]
    assert Job.objects.count() == 0
    assert MediaItem.objects.count() == 0
    assert stored_files(media_root) == []


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("setting", "value"), [("BAGGINTAG_MAX_ARCHIVE_MEMBERS", 2), ("BAGGINTAG_MAX_ARCHIVE_BYTES", 1000)]
)
def test_api_upload_bulk_refuses_archives_over_the_limits(api, media_root, settings, setting, value):
    setattr(settings, setting, value)
    response = _post_archive(api, mediafiles.zip_bytes({"a.jpg": JPEG, "b.png": PNG, "c.jpg": JPEG}))
    assert response.status_code == 413, response.content
    assert response.json()["code"] == "media.archive_too_large"
    assert Job.objects.count() == 0
    assert stored_files(media_root) == []


@pytest.mark.django_db
def test_api_upload_bulk_stages_a_good_archive(api, media_root):
    # The control for the tests above: the same request with a clean zip is accepted and staged.
    data = mediafiles.zip_bytes({"set/": b"", "set/a.jpg": JPEG, "b.png": PNG})
    response = _post_archive(api, data)
    assert response.status_code == 202, response.content
    job = Job.objects.get()
    assert [(i["type"], i["member"], i["index"]) for i in job.params["inputs"]] == [
        ("member", "set/a.jpg", 1),
        ("member", "b.png", 2),
    ]
    staged = stored_files(media_root)
    assert len(staged) == 1
    assert staged[0].read_bytes() == data
    assert staged[0].relative_to(media_root).as_posix() == job.params["staged"][0]
