"""The code passes the linter with the repository's settings (ruff.toml)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def ruff(*args: str | Path) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "ruff", "check", "--config", str(REPO / "ruff.toml"), "--output-format", "concise"]
    return subprocess.run([*command, *map(str, args)], cwd=REPO, capture_output=True, text=True, timeout=120)


def test_the_repository_passes_ruff():
    result = ruff(".")
    assert result.returncode == 0, result.stdout + result.stderr


def test_ruff_reports_a_planted_fault(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("import os\nx = " + "1 + " * 40 + "1\n")
    result = ruff(bad)
    assert result.returncode == 1
    assert "F401" in result.stdout and "E501" in result.stdout
