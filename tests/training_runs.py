"""Training runs through the CLI in a child process, and the kill-and-resume scenario."""

from __future__ import annotations

import csv
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from conftest import REPO

from pipeline.config import ARTIFACT_FILES

ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONPATH": str(REPO)}
RESUME_EPOCHS = 4  # head phase
RESUME_FINE_TUNE_EPOCHS = 1
KILL_DEADLINE_S = 240


def cli(*args: str, timeout: int = 300, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pipeline", *args], cwd=REPO, env=env or ENV,
                          capture_output=True, text=True, timeout=timeout)


def tiny_train_args(data: Path, out: Path, ck: Path, *extra: str) -> list[str]:
    return ["train", "--backbone", "SmallCNN", "--data-dir", str(data), "--weights", "none", "--image-size", "32",
            "--batch-size", "8", "--out", str(out), "--checkpoint-dir", str(ck), *extra]


def history_rows(path: Path) -> int:
    return len(list(csv.DictReader(path.open()))) if path.exists() else 0


@dataclass(frozen=True)
class ResumeRun:
    killed_after: int  # epochs in the checkpoint history when the first run was killed
    folder_after_kill: bool  # whether the model folder existed right after the kill
    second: subprocess.CompletedProcess  # the same command, run again
    history_epochs: list[int]  # epochs in the final history.csv
    epochs_run: dict  # config.json "epochs_run" of the final model
    half_written: list[str]  # model folders seen, while both runs went on, with a partial set of files

    @property
    def epochs_after(self) -> int:
        """Epochs the second run trained, in both phases (Keras logs one "Epoch n/N" line each)."""
        return len(re.findall(r"^Epoch \d+/\d+$", self.second.stdout + self.second.stderr, flags=re.MULTILINE))


class _FolderWatch:
    """Lists, every 10 ms in a thread, the model folders under ``out`` whose set of files is partial."""

    def __init__(self, out: Path) -> None:
        self.out = out
        self.seen_bad: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def _watch(self) -> None:
        while not self._stop.is_set():
            for folder in (p for p in self.out.glob("*") if p.is_dir() and not p.name.startswith(".")):
                names = {p.name for p in folder.iterdir()} if folder.exists() else set(ARTIFACT_FILES)
                if names != set(ARTIFACT_FILES):
                    self.seen_bad.append(f"{folder.name}: {sorted(names)}")
            time.sleep(0.01)

    def __enter__(self) -> _FolderWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join()


def kill_and_resume(image_folder: Path, tmp: Path) -> ResumeRun:
    """Train, SIGKILL the run after its first epoch, run the same command again, and watch the output folder.

    The fine-tune phase after the resumed one checks that a restored epoch does not carry into the next phase."""
    out, ck = tmp / "out", tmp / "ck"
    args = tiny_train_args(image_folder, out, ck, "--epochs", str(RESUME_EPOCHS), "--fine-tune-epochs",
                           str(RESUME_FINE_TUNE_EPOCHS),
                           "--patience", "10", "--image-size", "96")
    history = ck / "SmallCNN" / "chief-0" / "history-head.csv"
    with _FolderWatch(out) as watch:
        first = subprocess.Popen([sys.executable, "-m", "pipeline", *args], cwd=REPO, env=ENV,
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + KILL_DEADLINE_S
        while history_rows(history) < 1 and first.poll() is None and time.time() < deadline:
            time.sleep(0.05)
        first.send_signal(signal.SIGKILL)
        first.wait()
        killed_after = history_rows(history)
        folder_after_kill = (out / "SmallCNN").exists()
        second = cli(*args)
    folder = out / "SmallCNN"
    history_epochs = ([int(row["epoch"]) for row in csv.DictReader((folder / "history.csv").open())]
                      if second.returncode == 0 else [])
    epochs_run = json.loads((folder / "config.json").read_text())["epochs_run"] if second.returncode == 0 else {}
    return ResumeRun(killed_after, folder_after_kill, second, history_epochs, epochs_run, watch.seen_bad)
