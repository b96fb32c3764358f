"""Zip archives built in memory for the tests: labelled X-ray folders and every kind of bad archive."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

from pipeline.config import ARCHIVE_MAX_FILES


def zip_bytes(entries: dict[str, bytes], compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression) as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def folder_zip(folder: Path, top: str = "") -> bytes:
    """Every file under ``folder`` (a labelled image folder), stored under ``top``."""
    return zip_bytes({f"{top}{p.relative_to(folder).as_posix()}": p.read_bytes()
                      for p in sorted(folder.rglob("*")) if p.is_file()}, zipfile.ZIP_STORED)


def zip_bomb(megabytes: int = 64) -> bytes:
    """A real zip bomb, small: one entry of zeros that inflates about a thousand times."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        with archive.open("COVID/bomb.png", "w", force_zip64=True) as entry:
            chunk = bytes(1024 * 1024)
            for _ in range(megabytes):
                entry.write(chunk)
    return buffer.getvalue()


def lying_zip(png: bytes) -> bytes:
    """An entry whose central directory claims fewer bytes than it inflates to."""
    data = bytearray(zip_bytes({"COVID/a.png": png}, zipfile.ZIP_STORED))
    central = data.rfind(b"PK\x01\x02")
    data[central + 24:central + 28] = (len(png) // 2).to_bytes(4, "little")  # uncompressed size
    return bytes(data)


def ppmd_zip(png: bytes) -> bytes:
    """An entry marked as compressed with PPMd (method 98), which Python's zipfile cannot read."""
    data = bytearray(zip_bytes({"COVID/a.png": png}))
    local, central = data.find(b"PK\x03\x04"), data.rfind(b"PK\x01\x02")
    data[local + 8:local + 10] = data[central + 10:central + 12] = (98).to_bytes(2, "little")
    return bytes(data)


def damaged_zip(png: bytes) -> bytes:
    """An entry whose compressed bytes were overwritten halfway: its CRC-32 or its deflate stream breaks."""
    data = bytearray(zip_bytes({"Normal/b.png": png}))
    middle = data.find(b"PK\x03\x04") + 30 + len("Normal/b.png") + 20
    data[middle:middle + 16] = bytes(16)
    return bytes(data)


def bad_archives(png: bytes) -> dict[str, tuple[bytes, str]]:
    """Kind -> (archive bytes, words its message must contain).

    The words differ from kind to kind, so a test that sends them in turn to one page can tell a new message
    from the one the previous archive left.
    """
    many = {f"COVID/{i}.png": b"" for i in range(ARCHIVE_MAX_FILES + 1)}
    return {
        "not a zip": (png, "not a zip archive"),
        "empty": (zip_bytes({}), "archive is empty"),
        "nested": (zip_bytes({"COVID/a.png": png, "more/inner.zip": zip_bytes({"Normal/b.png": png})}),
                   "holds another archive"),
        "escaping path": (zip_bytes({"../COVID/a.png": png}), "leads outside"),
        "zip bomb": (zip_bomb(), "zip bomb"),
        "too many files": (zip_bytes(many, zipfile.ZIP_STORED), "more than the limit"),
        "no labels": (zip_bytes({"a.png": png, "b.png": png}), "No image has a label"),
        "unsupported compression": (ppmd_zip(png), "'COVID/a.png' uses compression method 98, which cannot be read"),
        "damaged entry": (damaged_zip(png), "'Normal/b.png' is damaged and cannot be read"),
    }
