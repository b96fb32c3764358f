"""Labelled X-rays from an uploaded zip, checked before anything is extracted, kept in memory only.

Labels come from class folders (``<Class>/images/*.png`` as in the Kaggle download, or
``<Class>/*.png``, under any top folder) or from a CSV in the archive with a file-name and a label
column. Every problem raises ``ArchiveError`` with a message for the user; nothing touches the disk.
"""

from __future__ import annotations

import csv
import io
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import PurePosixPath

from .config import (
    ARCHIVE_MAX_BYTES,
    ARCHIVE_MAX_FILES,
    ARCHIVE_MAX_IMAGES,
    ARCHIVE_MAX_RATIO,
    ARCHIVE_MAX_UPLOAD_MB,
    IMAGE_EXTENSIONS,
)
from .data import canonical_class
from .errors import PipelineError

MB = 1024 * 1024
ARCHIVE_SUFFIXES = (".zip", ".tar", ".gz", ".tgz", ".bz2", ".xz", ".7z", ".rar", ".zst", ".jar")
RATIO_CHECK_BYTES = MB  # smaller entries are not judged by their compression ratio
# The compression methods Python's zipfile reads; others (PPMd, Deflate64, ...) are refused before reading.
COMPRESSIONS = {zipfile.ZIP_STORED: "stored", zipfile.ZIP_DEFLATED: "deflate", zipfile.ZIP_BZIP2: "bzip2",
                zipfile.ZIP_LZMA: "LZMA"}
FILE_COLUMNS = ("file", "filename", "file_name", "image", "path", "name")
LABEL_COLUMNS = ("label", "class", "finding", "diagnosis")
SKIPPED_FOLDERS = ("__MACOSX", "masks")
LIMITS = (
    f"Accepted: one zip of at most {ARCHIVE_MAX_UPLOAD_MB} MB, {ARCHIVE_MAX_BYTES // MB} MB once uncompressed, "
    f"{ARCHIVE_MAX_FILES} files and {ARCHIVE_MAX_IMAGES} PNG, JPEG or DICOM images, labelled by class folders "
    "(<Class>/images/*.png or <Class>/*.png) or by a CSV with a file-name and a label column; "
    "no archives inside it."
)


class ArchiveError(PipelineError):
    """An archive that cannot be used; ``str(error)`` is a message for the user."""

    def __init__(self, problem: str) -> None:
        super().__init__(f"{problem} {LIMITS}")


@dataclass(frozen=True)
class LabelledImage:
    name: str  # path inside the archive
    data: bytes
    label: str  # a canonical class name where the label is one, else as written


@dataclass
class LabelledArchive:
    images: list[LabelledImage]
    labels_from: str  # "class folders", "<csv path>" or both
    unlabelled: list[str] = field(default_factory=list)  # images with no label, left out


def _open(data: bytes) -> zipfile.ZipFile:
    if not data:
        raise ArchiveError("The file is empty.")
    try:
        return zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise ArchiveError("The file is not a zip archive.") from exc


def _escapes(name: str) -> bool:
    path = PurePosixPath(name.replace("\\", "/"))
    return name.startswith(("/", "\\")) or ".." in path.parts or ":" in name


def check_members(members: list[zipfile.ZipInfo]) -> list[zipfile.ZipInfo]:
    """The files of the archive, once its central directory passes every check (nothing is read yet)."""
    files = [m for m in members if not m.is_dir()]
    if not files:
        raise ArchiveError("The archive is empty.")
    if len(members) > ARCHIVE_MAX_FILES:
        raise ArchiveError(f"The archive holds {len(members)} entries, more than the limit of {ARCHIVE_MAX_FILES}.")
    for member in members:
        if _escapes(member.filename):
            raise ArchiveError(f"The path {member.filename!r} leads outside the archive's folder.")
    nested = [m.filename for m in files if m.filename.lower().endswith(ARCHIVE_SUFFIXES)]
    if nested:
        raise ArchiveError(f"The archive holds another archive ({nested[0]!r}); put the images in it directly.")
    if any(m.flag_bits & 0x1 for m in files):
        raise ArchiveError("The archive is encrypted.")
    unreadable = next((m for m in files if m.compress_type not in COMPRESSIONS), None)
    if unreadable is not None:
        raise ArchiveError(f"{unreadable.filename!r} uses compression method {unreadable.compress_type}, which "
                           f"cannot be read here; valid methods: {', '.join(COMPRESSIONS.values())}.")
    total = sum(m.file_size for m in files)
    if total > ARCHIVE_MAX_BYTES:
        raise ArchiveError(f"The archive unpacks to {total / MB:.0f} MB, more than the limit of "
                           f"{ARCHIVE_MAX_BYTES // MB} MB.")
    for member in files:
        if member.file_size >= RATIO_CHECK_BYTES and member.file_size > ARCHIVE_MAX_RATIO * member.compress_size:
            raise ArchiveError(f"{member.filename!r} is compressed {member.file_size // max(member.compress_size, 1)} "
                               "times: this looks like a zip bomb.")
    return files


def _read(archive: zipfile.ZipFile, member: zipfile.ZipInfo) -> bytes:
    """The entry's bytes, never more than its central-directory size claims (a lying header cannot inflate)."""
    try:
        with archive.open(member) as handle:
            data = handle.read(member.file_size + 1)
    except (zipfile.BadZipFile, zlib.error, OSError, EOFError) as exc:
        raise ArchiveError(f"{member.filename!r} is damaged and cannot be read.") from exc
    if len(data) > member.file_size:
        raise ArchiveError(f"{member.filename!r} is larger than the archive says: this looks like a zip bomb.")
    return data


def _wanted(name: str) -> bool:
    parts = PurePosixPath(name).parts
    hidden = any(part.startswith(".") for part in parts)
    return not hidden and not any(part in SKIPPED_FOLDERS for part in parts[:-1])


def class_folder(name: str) -> PurePosixPath | None:
    """The class folder of ``<...>/<Class>/images/<file>`` or ``<...>/<Class>/<file>``; None at the top."""
    parents = PurePosixPath(name).parent
    if parents.name.lower() == "images":
        parents = parents.parent
    return parents if parents.name else None


def folder_labels(names: list[str]) -> dict[str, str]:
    """Image path -> its class folder's name (canonical where it is a class), for every image in a class folder.

    A folder that holds class folders (a top folder of the archive) is no class of its own: images directly
    in it stay unlabelled."""
    folders = {name: class_folder(name) for name in names}
    containers = {parent for folder in folders.values() if folder for parent in folder.parents}
    return {name: canonical_class(folder.name) or folder.name for name, folder in folders.items()
            if folder is not None and folder not in containers}


def _column(fields: list[str], names: tuple[str, ...]) -> str | None:
    return next((f for f in fields if f.strip().lower().replace(" ", "_").replace("-", "_") in names), None)


def csv_labels(name: str, data: bytes) -> dict[str, str]:
    """Archive path -> label from a CSV with a file-name and a label column (paths relative to the CSV)."""
    try:
        rows = list(csv.DictReader(io.StringIO(data.decode("utf-8-sig"))))
    except (UnicodeDecodeError, csv.Error):
        return {}
    fields = list(rows[0]) if rows else []
    file_column, label_column = _column(fields, FILE_COLUMNS), _column(fields, LABEL_COLUMNS)
    if file_column is None or label_column is None:
        return {}
    folder = PurePosixPath(name).parent
    labels = {}
    for row in rows:
        file, label = (row.get(file_column) or "").strip(), (row.get(label_column) or "").strip()
        if file and label:
            labels[(folder / file).as_posix()] = canonical_class(label) or label
    return labels


def read_labelled_zip(data: bytes) -> LabelledArchive:
    """Every labelled image of the zip ``data``, read into memory after the archive passes every check."""
    with _open(data) as archive:
        members = [m for m in check_members(archive.infolist()) if _wanted(m.filename)]
        images = [m for m in members if m.filename.lower().endswith(IMAGE_EXTENSIONS)]
        if not images:
            raise ArchiveError("The archive holds no PNG, JPEG or DICOM images.")
        if len(images) > ARCHIVE_MAX_IMAGES:
            raise ArchiveError(f"The archive holds {len(images)} images, more than the limit of {ARCHIVE_MAX_IMAGES}.")
        tables = [m for m in members if m.filename.lower().endswith(".csv")]
        from_csv: dict[str, str] = {}
        for table in tables:
            from_csv.update(csv_labels(table.filename, _read(archive, table)))
        from_folders = folder_labels([m.filename for m in images])
        labelled, unlabelled, used = [], [], set()
        for member in images:
            label = from_csv.get(member.filename) or from_folders.get(member.filename)
            if label is None:
                unlabelled.append(member.filename)
                continue
            used.add("a CSV" if member.filename in from_csv else "class folders")
            labelled.append(LabelledImage(member.filename, _read(archive, member), label))
    if not labelled:
        raise ArchiveError("No image has a label: put each in a folder named after its class, or add a CSV "
                           f"with a file-name column ({', '.join(FILE_COLUMNS)}) and a label column "
                           f"({', '.join(LABEL_COLUMNS)}).")
    return LabelledArchive(labelled, " and ".join(sorted(used)), unlabelled)
