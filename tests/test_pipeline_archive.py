"""Labelled X-rays from a zip: labels from class folders or a CSV, and a clear refusal of every bad archive."""

from __future__ import annotations

import io
import zipfile

import numpy as np
import pytest
from archives import bad_archives, folder_zip, lying_zip, zip_bomb, zip_bytes
from PIL import Image

from pipeline import archive
from pipeline.archive import ArchiveError, csv_labels, folder_labels, read_labelled_zip


@pytest.fixture(scope="module")
def png() -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.full((40, 40), 90, np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


def test_folder_labels():
    names = ["COVID/images/a.png", "top/viral_pneumonia/b.jpg", "top/Normal/c.dcm", "Tuberculosis/images/d.png",
             "e.png", "top/f.png"]
    assert folder_labels(names) == {"COVID/images/a.png": "COVID", "top/viral_pneumonia/b.jpg": "Viral Pneumonia",
                                    "top/Normal/c.dcm": "Normal", "Tuberculosis/images/d.png": "Tuberculosis"}


def test_csv_labels_are_relative_to_the_csv():
    table = b"File Name,Label\nx/a.png,covid\nb.png,Normal\n,Normal\nc.png,\n"
    assert csv_labels("set/labels.csv", table) == {"set/x/a.png": "COVID", "set/b.png": "Normal"}
    assert csv_labels("labels.csv", b"id,score\n1,2\n") == {}
    assert csv_labels("labels.csv", b"\xff\xfe") == {}


def test_reads_the_kaggle_layout_and_leaves_masks_out(image_folder):
    found = read_labelled_zip(folder_zip(image_folder, "upload/"))
    assert len(found.images) == 72 and found.labels_from in ("a CSV and class folders", "class folders", "a CSV")
    assert {image.label for image in found.images} == {"COVID", "Normal", "Viral Pneumonia"}
    assert all(image.data[:4] == b"\x89PNG" for image in found.images)


def test_csv_labels_win_and_unlabelled_images_are_listed(png):
    data = zip_bytes({"labels.csv": b"filename,class\nimg/a.png,Normal\n", "img/a.png": png, "b.png": png,
                      "__MACOSX/COVID/._a.png": b"junk", "COVID/masks/m.png": png})
    found = read_labelled_zip(data)
    assert [(i.name, i.label) for i in found.images] == [("img/a.png", "Normal")]
    assert found.labels_from == "a CSV" and found.unlabelled == ["b.png"]


@pytest.mark.parametrize("kind", ["not a zip", "empty", "nested", "escaping path", "zip bomb", "too many files",
                                  "no labels", "unsupported compression", "damaged entry"])
def test_each_bad_archive_gets_its_message(png, kind):
    data, words = bad_archives(png)[kind]
    with pytest.raises(ArchiveError, match=words) as raised:
        read_labelled_zip(data)
    assert "Accepted: one zip" in str(raised.value)


def test_a_zip_bomb_is_refused_from_the_central_directory_alone(monkeypatch):
    bomb = zip_bomb(8)
    assert len(bomb) < 64 * 1024
    monkeypatch.setattr(zipfile.ZipFile, "open", lambda *a, **k: pytest.fail("an entry was read"))
    with pytest.raises(ArchiveError, match="zip bomb"):
        read_labelled_zip(bomb)


def test_the_total_uncompressed_size_is_checked_first(monkeypatch, png):
    monkeypatch.setattr(archive, "ARCHIVE_MAX_BYTES", len(png))
    with pytest.raises(ArchiveError, match="unpacks to"):
        read_labelled_zip(zip_bytes({"COVID/a.png": png, "COVID/b.png": png}))


def test_an_entry_larger_than_its_header_says_is_refused(png):
    with pytest.raises(ArchiveError, match="larger than the archive says|damaged"):
        read_labelled_zip(lying_zip(png))


def test_too_many_images(monkeypatch, png):
    monkeypatch.setattr(archive, "ARCHIVE_MAX_IMAGES", 2)
    with pytest.raises(ArchiveError, match="3 images, more than the limit of 2"):
        read_labelled_zip(zip_bytes({f"COVID/{i}.png": png for i in range(3)}))


def test_no_images_at_all():
    with pytest.raises(ArchiveError, match="no PNG, JPEG or DICOM"):
        read_labelled_zip(zip_bytes({"COVID/notes.txt": b"hello"}))
