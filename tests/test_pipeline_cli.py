"""Each CLI error: one line naming the bad value (and the valid ones), exit code 2."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import keras
import pytest
from conftest import REPO, run_cli
from synthetic import make_image_folder

from pipeline.__main__ import main, prefer_onednn
from pipeline.config import ONEDNN_VARIABLE, RECIPES


def test_unknown_backbone(caplog, image_folder):
    code, text = run_cli(["train", "--backbone", "AlexNet", "--data-dir", str(image_folder)], caplog)
    assert code == 2 and "unknown backbone 'AlexNet'; valid backbones: DenseNet121, ResNet50" in text


def test_missing_data_folder(caplog, tmp_path):
    code, text = run_cli(["train", "--backbone", "SmallCNN", "--data-dir", str(tmp_path / "none")], caplog)
    assert code == 2 and "does not exist" in text and "python -m pipeline download" in text


def test_empty_data_folder(caplog, tmp_path):
    code, text = run_cli(["train", "--backbone", "SmallCNN", "--data-dir", str(tmp_path)], caplog)
    assert code == 2 and "no class folders" in text


def test_class_folder_without_images(caplog, tmp_path):
    make_image_folder(tmp_path, per_class=2, manifest=False)
    shutil.rmtree(tmp_path / "Normal" / "images")
    (tmp_path / "Normal" / "images").mkdir()
    code, text = run_cli(["train", "--backbone", "SmallCNN", "--data-dir", str(tmp_path)], caplog)
    assert code == 2 and "Normal" in text and "has no images" in text


def test_weights_of_another_backbone(caplog, tmp_path, image_folder):
    path = tmp_path / "mobilenet.weights.h5"
    keras.applications.MobileNet(include_top=False, weights=None, input_shape=(32, 32, 3)).save_weights(path)
    code, text = run_cli(["train", "--backbone", "ResNet50", "--data-dir", str(image_folder), "--weights", str(path),
                      "--image-size", "32", "--out", str(tmp_path / "out"),
                      "--checkpoint-dir", str(tmp_path / "ck")], caplog)
    assert code == 2 and "do not match backbone ResNet50" in text
    assert not (tmp_path / "out" / "ResNet50").exists()


def test_evaluate_a_folder_that_is_not_a_model(caplog, tmp_path, image_folder):
    code, text = run_cli(["evaluate", "--model", str(tmp_path), "--data-dir", str(image_folder)], caplog)
    assert code == 2 and f"{tmp_path}: config.json is missing" in text


def test_evaluate_a_truncated_model(caplog, tmp_path, models_dir, image_folder):
    folder = tmp_path / "MobileNet"
    shutil.copytree(models_dir / "MobileNet", folder)
    blob = (folder / "model.keras").read_bytes()
    (folder / "model.keras").write_bytes(blob[: len(blob) // 2])
    code, text = run_cli(["evaluate", "--model", str(folder), "--data-dir", str(image_folder)], caplog)
    assert code == 2 and "model.keras cannot be loaded" in text


def test_missing_required_option_is_an_argparse_error():
    with pytest.raises(SystemExit) as info:
        main(["train", "--data-dir", "x"])
    assert info.value.code == 2


@pytest.mark.parametrize("option, value", [("--batch-size", "0"), ("--epochs", "-1"), ("--image-size", "8"),
                                           ("--limit-per-class", "x")])
def test_counts_out_of_range_are_argparse_errors(option, value, capsys):
    with pytest.raises(SystemExit) as info:
        main(["train", "--backbone", "SmallCNN", "--data-dir", "x", option, value])
    assert info.value.code == 2 and f"{value!r} is not a whole number" in capsys.readouterr().err


@pytest.mark.parametrize("option, value, message", [
    ("--label-smoothing", "1.5", "'1.5' is not a number from 0 to below 1"),
    ("--augmentation", "heavy", "invalid choice: 'heavy'"),
])
def test_recipe_options_out_of_range_are_argparse_errors(option, value, message, capsys):
    with pytest.raises(SystemExit) as info:
        main(["train", "--backbone", "SmallCNN", "--data-dir", "x", option, value])
    assert info.value.code == 2 and message in capsys.readouterr().err


@pytest.mark.parametrize("command, before, after", [
    ("train", None, "1"), ("train-lungs", None, "1"), ("train", "0", "0"), ("evaluate", None, None),
])
def test_training_commands_turn_onednn_on_unless_set(command, before, after):
    """In a fresh process, as the CLI starts: TensorFlow reads the variable when it loads."""
    env = {k: v for k, v in os.environ.items() if k != ONEDNN_VARIABLE}
    if before is not None:
        env[ONEDNN_VARIABLE] = before
    code = ("import os, sys; from pipeline.__main__ import prefer_onednn; "
            f"prefer_onednn({command!r}); print(os.environ.get({ONEDNN_VARIABLE!r}))")
    run = subprocess.run([sys.executable, "-c", code], env=env, cwd=REPO, capture_output=True, text=True, check=True)
    assert run.stdout.strip() == str(after)


def test_onednn_is_left_alone_once_tensorflow_is_loaded(monkeypatch):
    import tensorflow  # noqa: F401  # loaded: the variable would only leak to child processes

    monkeypatch.delenv(ONEDNN_VARIABLE, raising=False)
    prefer_onednn("train")
    assert ONEDNN_VARIABLE not in os.environ


@pytest.mark.parametrize("option, value, message", [
    ("--distill-temperature", "0", "'0' is not a number above 0"),
    ("--distill-temperature", "warm", "'warm' is not a number above 0"),
    ("--distill-weight", "1.5", "'1.5' is not a number from 0 to 1"),
])
def test_distillation_options_out_of_range_are_argparse_errors(option, value, message, capsys):
    with pytest.raises(SystemExit) as info:
        main(["train", "--backbone", "SmallCNN", "--data-dir", "x", "--teacher", "t", option, value])
    assert info.value.code == 2 and message in capsys.readouterr().err


def test_distillation_options_without_a_teacher_are_refused(caplog, image_folder):
    code, text = run_cli(["train", "--backbone", "SmallCNN", "--data-dir", str(image_folder),
                          "--distill-weight", "0.3"], caplog)
    assert code == 2 and "--distill-weight only apply with --teacher DIR" in text


def test_a_teacher_that_is_no_model_folder_is_refused(caplog, tmp_path, image_folder):
    code, text = run_cli(["train", "--backbone", "SmallCNN", "--data-dir", str(image_folder), "--weights", "none",
                          "--image-size", "32", "--teacher", str(tmp_path), "--out", str(tmp_path / "out"),
                          "--checkpoint-dir", str(tmp_path / "ck")], caplog)
    assert code == 2 and str(tmp_path) in text and not (tmp_path / "out").exists()


def trained_options(monkeypatch, image_folder, *extra: str) -> list:
    """The TrainOptions that ``train`` ARGS hands to training, one per backbone (nothing trains)."""
    import pipeline.train

    handed = []
    monkeypatch.setattr(pipeline.train, "train", handed.append)
    assert main(["train", "--data-dir", str(image_folder), *extra]) == 0
    return handed


def recipe_of(options) -> tuple:
    return options.epochs, options.fine_tune_epochs, options.schedule, options.patience


def test_each_run_gets_the_recipe_of_how_it_starts(monkeypatch, image_folder):
    handed = trained_options(monkeypatch, image_folder, "--backbone", "MobileNet", "--backbone", "ResNet50",
                             "--backbone", "SmallCNN")
    pretrained, scratch = (tuple(RECIPES[k].values()) for k in ("pretrained", "from_scratch"))
    assert [recipe_of(o) for o in handed] == [pretrained, pretrained, scratch], "SmallCNN has no pretrained weights"
    assert scratch == (8, 0, "cosine", 8) and pretrained == (10, 10, "plateau", 4)
    assert [o.weights for o in handed] == ["imagenet", "imagenet", None], "the options say how each run starts"
    handed = trained_options(monkeypatch, image_folder, "--backbone", "ResNet50", "--weights", "none")
    assert [recipe_of(o) for o in handed] == [scratch]


def test_options_given_on_the_command_line_win_over_the_recipe(monkeypatch, image_folder):
    (options,) = trained_options(monkeypatch, image_folder, "--backbone", "DenseNet121", "--weights", "none",
                                 "--schedule", "plateau", "--fine-tune-epochs", "2", "--patience", "0")
    assert recipe_of(options) == (8, 2, "plateau", 0)
