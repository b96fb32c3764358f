"""Pieces every page shares: the disclaimer, warnings about broken model folders, the empty state."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import streamlit as st

from pipeline.config import DISCLAIMER

from . import loaders
from .catalog import TRAIN_HINT, Catalog, ModelEntry


def disclaimer() -> None:
    st.warning(DISCLAIMER, icon=":material/health_and_safety:")


def show_problems(catalog: Catalog) -> None:
    """One warning per broken model folder, naming the folder and the file."""
    for problem in catalog.problems:
        st.warning(problem, icon=":material/folder_off:")


def require_models(catalog: Catalog, entries: Sequence[ModelEntry], need: str) -> bool:
    """False (after saying how to train one) when ``entries`` is empty."""
    if entries:
        return True
    found = "No saved models" if not catalog.entries else f"No model {need}"
    st.info(f"{found} in the folder `{catalog.root.name}`. {TRAIN_HINT}", icon=":material/model_training:")
    return False


def open_page(title: str, entries_of: Callable[[Catalog], Sequence[ModelEntry]],
              need: str) -> tuple[Catalog, Sequence[ModelEntry]] | None:
    """Title, warnings about broken folders, and the models the page can use (None: train first)."""
    st.title(title)
    catalog = loaders.load_catalog()
    show_problems(catalog)
    entries = entries_of(catalog)
    return (catalog, entries) if require_models(catalog, entries, need) else None
