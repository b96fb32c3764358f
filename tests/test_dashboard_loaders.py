"""The app's cached loaders pick up an edit to any file of a model folder."""

from __future__ import annotations

import shutil

import pytest
from conftest import REPO

from dashboard import catalog, loaders
from pipeline.config import CARD_FILE, PREDICTIONS_FILE

SHIPPED = REPO / "saved_models" / "SmallCNN"


@pytest.fixture
def models(tmp_path, monkeypatch):
    shutil.copytree(SHIPPED, tmp_path / SHIPPED.name)
    monkeypatch.setenv(catalog.MODELS_DIR_VAR, str(tmp_path))
    return tmp_path / SHIPPED.name


def _entry() -> catalog.ModelEntry:
    return loaders.load_catalog().entry(SHIPPED.name)


def test_editing_only_the_predictions_refreshes_the_cache(models):
    before = _entry()
    rows = len(loaders.predictions(str(before.folder), before.stamp))
    lines = (models / PREDICTIONS_FILE).read_text().splitlines(keepends=True)
    (models / PREDICTIONS_FILE).write_text("".join(lines[:11]))
    after = _entry()
    assert after.stamp != before.stamp
    assert rows > 10 and len(loaders.predictions(str(after.folder), after.stamp)) == 10


def test_editing_only_the_model_card_refreshes_the_cache(models):
    before = _entry()
    card = loaders.model_card(str(before.folder), before.stamp)
    (models / CARD_FILE).write_text(card + "\nEdited.\n", encoding="utf-8")
    after = _entry()
    assert after.stamp != before.stamp
    assert loaders.model_card(str(after.folder), after.stamp) == card + "\nEdited.\n"


def test_a_hidden_staging_file_leaves_the_stamp_alone(models):
    stamp = catalog.folder_stamp(models)
    (models / f".{CARD_FILE}.tmp").write_text("half a card")
    assert catalog.folder_stamp(models) == stamp
