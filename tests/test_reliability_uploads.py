"""Every kind of upload, good and bad, through the explain page's functions and through the page itself."""

from __future__ import annotations

import pytest
from upload_corpus import ACCEPTED, BUILDERS, REFUSED, Outcome, Upload, outcome_table, run_corpus


@pytest.fixture(scope="module")
def results(models_dir, tmp_path_factory) -> list[tuple[Upload, Outcome, Outcome]]:
    """Each upload, its outcome through the functions, its outcome on the page."""
    return run_corpus(models_dir, tmp_path_factory.mktemp("uploads"))


@pytest.fixture(scope="module")
def outcomes(results) -> dict[str, tuple[Upload, Outcome, Outcome]]:
    return {upload.name: (upload, direct, page) for upload, direct, page in results}


@pytest.mark.parametrize("name", list(BUILDERS))
def test_a_prediction_with_both_maps_or_one_message(outcomes, name):
    upload, direct, page = outcomes[name]
    if upload.refusal is None:
        assert (direct.kind, page.kind) == (ACCEPTED, ACCEPTED), (direct, page)
        assert page.detail == direct.detail  # the page explains the class the model predicts
    else:
        assert direct.kind == REFUSED and upload.refusal in direct.detail
        assert "Accepted: a PNG, JPEG or DICOM" in direct.detail  # the message names the accepted formats
        assert page == Outcome(name, REFUSED, direct.detail)  # one st.error, the same words, no maps


def test_outcome_counts(results, capsys):
    with capsys.disabled():
        print(f"\nUpload corpus, {len(results)} files:\n{outcome_table(results)}")
    assert {outcome.kind for _, direct, page in results for outcome in (direct, page)} <= {ACCEPTED, REFUSED}
