"""kagglehub path: a pinned handle, the cache reused offline, a clear error without credentials."""

from __future__ import annotations

import kagglehub
import pytest
from synthetic import make_image_folder

from pipeline import data, download
from pipeline.config import KAGGLE_DATASET, KAGGLE_VERSION
from pipeline.errors import DataError


def test_handle_is_pinned():
    assert download.dataset_handle() == f"{KAGGLE_DATASET}/versions/{KAGGLE_VERSION}"


def test_complete_cached_copy_is_reused_offline(tmp_path, monkeypatch):
    """The real kagglehub, no network: a complete copy in KAGGLEHUB_CACHE is returned as is."""
    monkeypatch.setenv("KAGGLEHUB_CACHE", str(tmp_path))
    owner, name = KAGGLE_DATASET.split("/")
    base = tmp_path / "datasets" / owner / name
    make_image_folder(base / "versions" / str(KAGGLE_VERSION) / "COVID-19_Radiography_Dataset", per_class=2,
                      manifest=False)
    (base / f"{KAGGLE_VERSION}.complete").touch()
    path = download.download_dataset()
    assert path == base / "versions" / str(KAGGLE_VERSION)
    assert len(data.scan_dataset(path).samples) == 6


def test_user_without_credentials_is_told_what_to_set(monkeypatch):
    def offline(handle, *args, **kwargs):
        raise kagglehub.exceptions.UnauthenticatedError("no credentials")

    for name in ("KAGGLE_API_TOKEN", "KAGGLE_USERNAME", "KAGGLE_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(kagglehub, "dataset_download", offline)
    with pytest.raises(DataError, match="set KAGGLE_API_TOKEN, or KAGGLE_USERNAME and KAGGLE_KEY.*--data-dir"):
        download.download_dataset()


def test_user_with_credentials_is_told_to_check_them(monkeypatch):
    def refused(handle, *args, **kwargs):
        raise ConnectionError("network down")

    monkeypatch.setenv("KAGGLE_USERNAME", "someone")
    monkeypatch.setenv("KAGGLE_KEY", "not-a-real-key")
    monkeypatch.setattr(kagglehub, "dataset_download", refused)
    with pytest.raises(DataError, match="check the network and that the credentials are valid"):
        download.download_dataset(3)
