"""A bundle archive never holds a member that could leave the directory it is unpacked in."""

from __future__ import annotations

import gzip
import io
import tarfile

import pytest

from approvals.bundles.archive import ArchiveError, archive_build, archive_read


def tar_gz(*members: tarfile.TarInfo, data: bytes = b"x") -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        for member in members:
            tar.addfile(member, io.BytesIO(data) if member.isfile() else None)
    return gzip.compress(raw.getvalue())


def regular(name: str, size: int = 1) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size = size
    return info


@pytest.mark.parametrize(
    "name",
    [
        "../../../../tmp/x/migrations/0001_initial.py",
        "/etc/passwd",
        "a/../../b.py",
        "a\\..\\b.py",
        "C:/x.py",
        "a//b.py",
        "./a.py",
    ],
)
def test_building_an_archive_with_an_escaping_member_name_is_refused(name: str) -> None:
    with pytest.raises(ArchiveError, match="unsafe"):
        archive_build({name: b"x"})


@pytest.mark.parametrize("name", ["../x.py", "/abs.py", "a/../../x.py", "a\\..\\x.py"])
def test_reading_an_archive_with_an_escaping_member_is_refused(name: str) -> None:
    with pytest.raises(ArchiveError, match="unexpected archive member"):
        archive_read(tar_gz(regular(name)))


def test_reading_an_archive_with_a_link_is_refused() -> None:
    link = tarfile.TarInfo("migrations/0001.py")
    link.type = tarfile.SYMTYPE
    link.linkname = "/etc/passwd"
    with pytest.raises(ArchiveError, match="unexpected archive member"):
        archive_read(tar_gz(link))


def test_reading_an_archive_with_a_duplicate_member_is_refused() -> None:
    with pytest.raises(ArchiveError, match="twice"):
        archive_read(tar_gz(regular("a.py"), regular("a.py")))


def test_a_safe_archive_reads_back_as_built() -> None:
    files = {"shop/migrations/0002_note.py": b"print", "manifest.json": b"{}"}
    assert archive_read(archive_build(files)) == files
