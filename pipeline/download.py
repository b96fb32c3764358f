"""Fetch the COVID-19 Radiography Database with kagglehub (pinned version, cache reused)."""

from __future__ import annotations

import logging
import os
from pathlib import Path

from .config import KAGGLE_CREDENTIAL_VARS, KAGGLE_DATASET, KAGGLE_VERSION
from .errors import DataError

log = logging.getLogger(__name__)


def dataset_handle(version: int = KAGGLE_VERSION) -> str:
    return f"{KAGGLE_DATASET}/versions/{version}"


def download_dataset(version: int = KAGGLE_VERSION) -> Path:
    """Path of the unpacked dataset; kagglehub reuses a complete cached copy without network.

    kagglehub reads credentials from ``KAGGLE_API_TOKEN`` or ``KAGGLE_USERNAME`` and
    ``KAGGLE_KEY`` and caches under ``KAGGLEHUB_CACHE`` (default ``~/.cache/kagglehub``).
    """
    import kagglehub  # imported here: only this command needs it

    handle = dataset_handle(version)
    try:
        path = Path(kagglehub.dataset_download(handle))
    except Exception as exc:  # network, HTTP and auth errors of kagglehub and requests
        has_credentials = any(os.environ.get(name) for name in KAGGLE_CREDENTIAL_VARS)
        hint = (
            "check the network and that the credentials are valid"
            if has_credentials
            else "set KAGGLE_API_TOKEN, or KAGGLE_USERNAME and KAGGLE_KEY (kaggle.com > Settings > API)"
        )
        raise DataError(
            f"could not download {handle} ({type(exc).__name__}): {hint}; "
            "or pass --data-dir with a copy of the data"
        ) from exc
    log.info("dataset %s at %s", handle, path)
    return path
