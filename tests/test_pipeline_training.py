"""End to end: train through the CLI, evaluate through the CLI, real data, two workers, resume."""

from __future__ import annotations

import csv
import json
import socket
import subprocess
import sys

import numpy as np
import pytest
from conftest import MOBILENET_WEIGHTS, REPO, SUBSET, needs
from training_runs import ENV, cli, kill_and_resume, tiny_train_args

from pipeline.config import ARTIFACT_FILES


@pytest.mark.slow
def test_train_then_evaluate_through_the_cli(tmp_path, image_folder):
    done = cli(*tiny_train_args(image_folder, tmp_path / "out", tmp_path / "ck", "--epochs", "1",
                                "--fine-tune-epochs", "1", "--augmentation", "robust", "--label-smoothing", "0.1"))
    assert done.returncode == 0, done.stderr
    folder = tmp_path / "out" / "SmallCNN"
    assert sorted(p.name for p in folder.iterdir()) == sorted(ARTIFACT_FILES)
    assert not (tmp_path / "ck" / "SmallCNN").exists(), "checkpoints are removed after a complete run"
    config = json.loads((folder / "config.json").read_text())
    assert config["classes"] == ["COVID", "Normal", "Viral Pneumonia"]
    assert (config["augmentation"], config["label_smoothing"]) == ("robust", 0.1)
    rows = list(csv.DictReader((folder / "predictions.csv").open()))
    assert sum(config["data"]["counts"]["test"].values()) == len(rows)

    shown = cli("evaluate", "--model", str(folder), "--data-dir", str(image_folder), "--json")
    assert shown.returncode == 0, shown.stderr
    result = json.loads(shown.stdout)
    assert result["n_images"] == 72 and set(result["per_class"]) == set(config["classes"])

    from pipeline.data import scan_dataset
    from pipeline.evaluate import predict_samples
    from pipeline.model import load_trained_model

    model, classes = load_trained_model(folder)
    dataset = scan_dataset(image_folder, classes=classes)
    probs = predict_samples(model, dataset.samples, 16)
    assert result["accuracy"] == pytest.approx(np.mean(probs.argmax(1) == dataset.labels))


@pytest.mark.slow
def test_the_saved_weights_are_the_lowest_validation_loss_of_either_phase(tmp_path, image_folder):
    """A fine-tune phase at an absurd learning rate ends worse than the head phase: its weights must not ship."""
    done = cli(*tiny_train_args(image_folder, tmp_path / "out", tmp_path / "ck", "--epochs", "2",
                                "--fine-tune-epochs", "1", "--fine-tune-learning-rate", "50"))
    assert done.returncode == 0, done.stderr
    folder = tmp_path / "out" / "SmallCNN"
    config = json.loads((folder / "config.json").read_text())
    losses = [float(row["val_loss"]) for row in csv.DictReader((folder / "history.csv").open())]
    assert not losses[-1] <= min(losses[:2]), "the fine-tune phase was meant to end worse"
    kept = config["kept_epoch"]
    assert kept["epoch"] == 1 + int(np.nanargmin(losses)) and kept["val_loss"] == pytest.approx(np.nanmin(losses))

    from pipeline.data import scan_dataset, split_indices
    from pipeline.evaluate import predict_samples
    from pipeline.model import load_trained_model

    model, classes = load_trained_model(folder)
    dataset = scan_dataset(image_folder, classes=classes)
    groups = [s.group for s in dataset.samples]
    val = split_indices(dataset.labels, groups, tuple(config["split"]), config["seed"])["val"]
    probs = predict_samples(model, [dataset.samples[i] for i in val], 8)
    saved_loss = -np.mean(np.log(probs[np.arange(len(val)), dataset.labels[val]]))
    assert saved_loss == pytest.approx(kept["val_loss"], rel=1e-3)


def test_best_weights_keep_one_file_named_by_a_record_that_survives_a_restart(tmp_path):
    import keras

    from pipeline.checkpoints import BestWeights

    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    first = BestWeights(tmp_path)
    first.set_model(model)
    for epoch, loss in enumerate([0.9, 0.5, float("nan"), 0.7]):
        first.on_epoch_end(epoch, {"val_loss": loss})
    again = BestWeights(tmp_path)  # a resumed run reads what the killed one found
    again.set_model(model)
    again.on_epoch_end(4, {"val_loss": 0.6})
    assert again.saved() == {"epoch": 2, "val_loss": 0.5, "weights": "best-2.weights.h5"}
    again.on_epoch_end(5, {"val_loss": 0.4})
    assert again.saved()["epoch"] == 6
    assert sorted(p.name for p in tmp_path.glob("*.h5")) == ["best-6.weights.h5"]


def test_a_phase_resumes_from_its_backup_and_leaves_no_epoch_behind_for_the_next(tmp_path):
    import keras

    from pipeline.checkpoints import EpochBackup

    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(32, 4)).astype("float32"), rng.integers(0, 2, 32)

    def compiled():
        model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2, activation="softmax")])
        model.compile(keras.optimizers.Adam(0.01), "sparse_categorical_crossentropy")
        return model

    killed = compiled()
    killed.fit(x, y, epochs=2, batch_size=8, callbacks=[EpochBackup(tmp_path, "head")], verbose=0)
    model, backup = compiled(), EpochBackup(tmp_path, "head")
    start = backup.restore(model, 0)
    assert start == 2 and int(model.optimizer.iterations) == int(killed.optimizer.iterations) == 8
    assert all(np.array_equal(a, b) for a, b in zip(model.get_weights(), killed.get_weights()))
    assert model.fit(x, y, initial_epoch=start, epochs=4, batch_size=8, callbacks=[backup], verbose=0).epoch == [2, 3]
    assert model.fit(x, y, initial_epoch=4, epochs=5, batch_size=8, verbose=0).epoch == [4], "the next phase"
    assert sorted(p.name for p in tmp_path.glob("*.h5")) == ["backup-head-4.weights.h5"]


@needs(SUBSET)
@needs(MOBILENET_WEIGHTS)
@pytest.mark.slow
def test_a_few_steps_on_real_xrays_with_imagenet_mobilenet_and_the_candidate_recipes(tmp_path):
    from pipeline.__main__ import main

    code = main(["train", "--backbone", "MobileNet", "--data-dir", str(SUBSET), "--weights", str(MOBILENET_WEIGHTS),
                 "--epochs", "1", "--fine-tune-epochs", "1", "--image-size", "64", "--limit-per-class", "40",
                 "--intensity", "equalize", "--balance", "chain", "--schedule", "cosine",
                 "--out", str(tmp_path / "out"), "--checkpoint-dir", str(tmp_path / "ck")])
    assert code == 0
    metrics = json.loads((tmp_path / "out" / "MobileNet" / "metrics.json").read_text())
    assert metrics["class_names"] == ["COVID", "Normal", "Viral Pneumonia"]
    assert "kermany" in metrics["per_source"]
    config = json.loads((tmp_path / "out" / "MobileNet" / "config.json").read_text())
    assert config["weights"] == str(MOBILENET_WEIGHTS) and config["data"]["missing_classes"] == ["Lung_Opacity"]
    assert (config["intensity"], config["balance"], config["schedule"]) == (
        "equalize", "chain", {"kind": "cosine", "warmup_epochs": 1})
    from pipeline.intensity import LAYER_NAME
    from pipeline.model import load_trained_model

    model, _ = load_trained_model(tmp_path / "out" / "MobileNet")
    assert model.layers[1].name == LAYER_NAME


def free_ports(n: int) -> list[int]:
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


@pytest.mark.slow
def test_two_workers_train_together_on_localhost(tmp_path, image_folder):
    cluster = {"worker": [f"localhost:{p}" for p in free_ports(2)]}
    args = tiny_train_args(image_folder, tmp_path / "out", tmp_path / "ck", "--epochs", "1", "--fine-tune-epochs", "1")
    workers = [
        subprocess.Popen([sys.executable, "-m", "pipeline", *args], cwd=REPO, stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, text=True,
                         env={**ENV, "TF_CONFIG": json.dumps({"cluster": cluster,
                                                              "task": {"type": "worker", "index": i}})})
        for i in range(2)
    ]
    try:
        logs = [w.communicate(timeout=300)[0] for w in workers]
    finally:
        for w in workers:
            w.kill()
    assert [w.returncode for w in workers] == [0, 0], logs
    assert "worker worker-1 done; the chief writes the model" in logs[1]
    config = json.loads((tmp_path / "out" / "SmallCNN" / "config.json").read_text())
    assert config["replicas"] == 2


@pytest.mark.slow
def test_killed_run_resumes_from_its_last_epoch_and_never_shows_half_a_model(tmp_path, image_folder):
    run = kill_and_resume(image_folder, tmp_path)
    assert 1 <= run.killed_after < 4, "the kill must land after epoch 1 and before the end"
    assert not run.folder_after_kill
    assert run.second.returncode == 0, run.second.stderr
    assert f"Epoch {run.killed_after + 1}/4" in run.second.stdout + run.second.stderr
    assert "Epoch 1/4" not in run.second.stdout
    assert run.epochs_after == 4 - run.killed_after + 1, "the fine-tune phase must start after the head phase"
    assert run.history_epochs == [0, 1, 2, 3, 4]
    assert run.epochs_run == {"head": 4, "fine_tune": 1}
    assert not run.half_written, run.half_written
