"""Scans of the repository: credentials in committed files, and code that could unpickle a foreign file."""

from __future__ import annotations

import ast
import re
import subprocess
from collections.abc import Iterable
from pathlib import Path, PurePosixPath

REPO = Path(__file__).resolve().parents[1]
CODE_FOLDERS = ("pipeline", "dashboard")
BINARY_PROBE = 8192

# What a credential looks like; a placeholder ("...", "<your key>", "$KAGGLE_KEY") is not one.
SECRET_PATTERNS = {
    "Kaggle key or token": re.compile(r"KAGGLE_(?:KEY|API_TOKEN)['\"]?\s*[=:]\s*['\"]?[A-Za-z0-9_\-]{16,}"),
    "AWS access key id": re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"),
    "AWS secret access key": re.compile(r"(?i)aws_secret_access_key['\"]?\s*[=:]\s*['\"]?[A-Za-z0-9/+]{40}"),
    "Google API key": re.compile(r"\bAIza[0-9A-Za-z_\-]{35}\b"),
    "Google service account key": re.compile(r"\"type\"\s*:\s*\"service_account\""),
    "GitHub token": re.compile(r"\bgh[pousr]_[A-Za-z0-9]{36}\b"),
    "private key": re.compile(r"-----BEGIN (?:[A-Z]+ )?PRIVATE KEY-----"),
}
KAGGLE_JSON_KEY = re.compile(r"\"key\"\s*:")
SECRET_FILES = (".streamlit/secrets.toml", ".env")

# Ways to turn a foreign file into Python objects, i.e. to run its code.
UNSAFE_LOADING = {
    "pickle": re.compile(r"\b(?:c?[Pp]ickle|dill|shelve|marshal)\b"),
    "allow_pickle=True": re.compile(r"allow_pickle\s*=\s*True"),
    "safe_mode=False": re.compile(r"safe_mode\s*=\s*False"),
    # np.load unpickles only with allow_pickle=True; a call that says allow_pickle=False on its line cannot
    "np.load(": re.compile(r"\b(?:np|numpy)\.load\((?![^)]*allow_pickle\s*=\s*False)"),
    "joblib.load": re.compile(r"\bjoblib\.load\b"),
    "torch.load": re.compile(r"\btorch\.load\("),
    "pandas read_pickle": re.compile(r"\bread_pickle\("),
    "yaml.load": re.compile(r"\byaml\.(?:unsafe_)?load\("),
}


def committable_files(repo: Path = REPO) -> list[str]:
    """Tracked files, and untracked ones that .gitignore does not hide (what ``git add -A`` would add)."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=repo,
                            capture_output=True, check=True, timeout=60).stdout
    return sorted({name for name in listed.decode().split("\0") if name and (repo / name).is_file()})


def secrets_in(files: Iterable[tuple[str, bytes]]) -> list[str]:
    """"path:line: kind" for every credential-like string; the value itself is never repeated."""
    findings = []
    for name, data in files:
        path = PurePosixPath(name)
        if name in SECRET_FILES or path.name in SECRET_FILES:
            findings.append(f"{name}: a secrets file is committed")
        if b"\0" in data[:BINARY_PROBE]:
            continue
        text = data.decode("utf-8", errors="replace")
        if path.name == "kaggle.json" and KAGGLE_JSON_KEY.search(text):
            findings.append(f"{name}: a Kaggle API key file is committed")
        findings += [f"{name}:{number}: {kind}" for number, line in enumerate(text.splitlines(), 1)
                     for kind, pattern in SECRET_PATTERNS.items() if pattern.search(line)]
    return findings


def repository_secrets(repo: Path = REPO) -> tuple[int, list[str]]:
    """How many files were scanned, and what was found in them."""
    names = committable_files(repo)
    return len(names), secrets_in((name, (repo / name).read_bytes()) for name in names)


def code_files(repo: Path = REPO) -> list[Path]:
    return sorted(path for folder in CODE_FOLDERS for path in (repo / folder).rglob("*.py"))


def unsafe_loading_in(path: Path) -> list[str]:
    """"path:line: kind" for every line of ``path`` that could unpickle a file."""
    lines = path.read_text(encoding="utf-8").splitlines()
    return [f"{path}:{number}: {kind}" for number, line in enumerate(lines, 1)
            for kind, pattern in UNSAFE_LOADING.items() if pattern.search(line)]


def model_loads(path: Path) -> list[tuple[int, bool]]:
    """(line, passes ``safe_mode=True``) for every ``load_model(...)`` call in ``path``."""
    calls = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", None)) == "load_model":
            safe = any(k.arg == "safe_mode" and isinstance(k.value, ast.Constant) and k.value.value is True
                       for k in node.keywords)
            calls.append((node.lineno, safe))
    return calls
