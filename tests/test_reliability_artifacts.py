"""Broken model folders: the CLI and both pages name the folder and the file alike; good models still serve."""

from __future__ import annotations

import pytest
from broken_artifacts import CASES, GOOD, ArtifactsCheck, CaseResult, check, headline
from training_runs import cli


@pytest.fixture(scope="module")
def checked(models_dir, image_folder, tmp_path_factory) -> ArtifactsCheck:
    return check(models_dir, image_folder, tmp_path_factory.mktemp("models-with-broken-ones"))


def result_of(checked: ArtifactsCheck, folder: str) -> CaseResult:
    return next(result for result in checked.cases if result.case.folder == folder)


@pytest.mark.parametrize("folder", [case.folder for case in CASES])
def test_cli_and_dashboard_name_the_folder_and_the_file_alike(checked, folder):
    result = result_of(checked, folder)
    assert result.exit_code == 2 and result.named(result.cli_message), result.cli_message
    assert result.named(result.app_warning), (result.cli_message, checked.view.warnings)
    assert headline(result.cli_message) in result.app_warning


def test_the_good_models_are_still_served(checked):
    view = checked.view
    assert not view.exceptions and not view.errors
    assert checked.good_exit_codes == dict.fromkeys(GOOD, 0)
    assert set(view.compared) == set(GOOD) | {case.folder for case in CASES if case.compared}
    assert set(view.explained) == set(GOOD) | {case.folder for case in CASES if case.explained}


def test_the_command_itself_exits_2_with_that_message(checked, image_folder):
    result = result_of(checked, "broken-truncated-model")
    done = cli("evaluate", "--model", str(result.folder), "--data-dir", str(image_folder), timeout=120)
    assert done.returncode == 2 and result.cli_message in done.stderr, done.stderr
