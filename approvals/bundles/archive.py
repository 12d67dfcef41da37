"""A byte-for-byte reproducible .tar.gz: fixed order, times, owners, modes and compression."""

from __future__ import annotations

import gzip
import io
import tarfile
import zlib

FIXED_MTIME = 0

# Archives also arrive from outside (verification): bound what reading one may cost.
MAX_UNPACKED_BYTES = 256 * 1024 * 1024
MAX_MEMBERS = 20_000


class ArchiveError(ValueError):
    """The bytes are not a bundle archive this service would have written."""


def is_safe_member(path: str) -> bool:
    """A member name that stays inside the directory it is extracted to, on any system."""
    parts = path.split("/")
    return (
        bool(path)
        and not path.startswith("/")
        and "\\" not in path
        and "\x00" not in path
        and ":" not in parts[0]
        and all(part not in ("", ".", "..") for part in parts)
    )


def archive_build(files: dict[str, bytes]) -> bytes:
    """Pack files (path -> content) so the same input always gives the same bytes.

    Member names were built from validated app labels and migration names; a name that could
    leave the extraction directory is refused here as well, so no bundle can carry one.
    """
    unsafe = sorted(path for path in files if not is_safe_member(path))
    if unsafe:
        raise ArchiveError(f"unsafe archive member names: {unsafe[:5]}")
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path in sorted(files):
            data = files[path]
            info = tarfile.TarInfo(path)
            info.size = len(data)
            info.mtime = FIXED_MTIME
            info.mode = 0o644
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            tar.addfile(info, io.BytesIO(data))
    out = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=out, compresslevel=9, mtime=FIXED_MTIME) as gz:
        gz.write(raw.getvalue())
    return out.getvalue()


def _gunzip(data: bytes, limit: int) -> bytes:
    """Decompress at most `limit` bytes, so a small gzip bomb costs nothing."""
    try:
        with gzip.GzipFile(fileobj=io.BytesIO(data), mode="rb") as gz:
            raw = gz.read(limit + 1)
    except (OSError, EOFError, zlib.error) as exc:
        raise ArchiveError(f"not a gzip file: {exc}") from exc
    if len(raw) > limit:
        raise ArchiveError(f"the archive unpacks to more than {limit} bytes")
    return raw


def archive_read(data: bytes, *, max_bytes: int = MAX_UNPACKED_BYTES) -> dict[str, bytes]:
    """The regular files of an archive; anything else (links, devices, absolute paths) is refused."""
    files: dict[str, bytes] = {}
    try:
        with tarfile.open(fileobj=io.BytesIO(_gunzip(data, max_bytes)), mode="r:") as tar:
            for count, member in enumerate(tar, start=1):
                if count > MAX_MEMBERS:
                    raise ArchiveError(f"more than {MAX_MEMBERS} files in the archive")
                if not member.isfile() or not is_safe_member(member.name):
                    raise ArchiveError(f"unexpected archive member {member.name!r}")
                if member.name in files:
                    raise ArchiveError(f"{member.name!r} appears twice in the archive")
                extracted = tar.extractfile(member)
                assert extracted is not None
                files[member.name] = extracted.read()
    except tarfile.TarError as exc:
        raise ArchiveError(f"not a tar archive: {exc}") from exc
    return files
