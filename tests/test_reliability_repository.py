"""No credentials in what would be committed; no code that could unpickle a foreign file."""

from __future__ import annotations

import pytest
from repo_scan import (
    code_files,
    model_loads,
    repository_secrets,
    secrets_in,
    unsafe_loading_in,
)


def test_no_credentials_in_the_repository():
    scanned, findings = repository_secrets()
    assert scanned > 50 and not findings, findings


def planted() -> list[tuple[str, bytes]]:
    """Credential-shaped strings, assembled here so that this file holds none of them."""
    key, access = "0123456789abcdef" * 2, "AKIA" + "Q" * 16
    return [
        (".env", f"KAGGLE_KEY={key}\n".encode()),
        ("deploy/kaggle.json", b'{"username": "someone", "' + b"key" + b'": "' + key.encode() + b'"}'),
        (".streamlit/secrets.toml", b'KAGGLE_USERNAME = "someone"\n'),
        ("notes.md", f"aws: {access}\nmaps: AIza{'x' * 35}\n-----BEGIN RSA PRIVATE {'KEY'}-----\n".encode()),
        ("README.md", b'KAGGLE_KEY = "..."  # a placeholder, not a key\nexport KAGGLE_KEY=$KAGGLE_KEY\n'),
    ]


def test_the_credential_scan_finds_planted_ones():
    findings = secrets_in(planted())
    assert findings == [
        ".env: a secrets file is committed",
        ".env:1: Kaggle key or token",
        "deploy/kaggle.json: a Kaggle API key file is committed",
        ".streamlit/secrets.toml: a secrets file is committed",
        "notes.md:1: AWS access key id",
        "notes.md:2: Google API key",
        "notes.md:3: private key",
    ]


def test_no_unpickling_of_foreign_files():
    files = code_files()
    assert len(files) > 20
    findings = [finding for path in files for finding in unsafe_loading_in(path)]
    assert not findings, findings


@pytest.mark.parametrize("line, found", [("x = np.load(path, allow_pickle=True)", 2), ("import pickle", 1),
                                         ("keras.saving.load_model(p, safe_mode=False)", 1),
                                         ("model = joblib.load(f)", 1), ("image.load()", 0),
                                         ("np.load(path)", 1), ("np.load(path, allow_pickle=False)", 0)])
def test_the_unpickling_scan_finds_planted_lines(tmp_path, line, found):
    path = tmp_path / "planted.py"
    path.write_text(f"{line}\n")
    assert len(unsafe_loading_in(path)) == found


def test_every_model_load_is_in_safe_mode():
    loads = [(str(path), line, safe) for path in code_files() for line, safe in model_loads(path)]
    assert loads and all(safe for _, _, safe in loads), loads
