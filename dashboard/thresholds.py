"""The COVID threshold chosen per model on the comparison page, shared with the explain page.

Kept in ``st.session_state`` under a key of its own (not a widget's, which Streamlit drops when its
widget is not drawn), so a threshold survives switching tabs and pages within a session.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import streamlit as st

from pipeline.config import DEFAULT_THRESHOLD, OPERATING_CLASS

KEY = "operating-thresholds"  # model name -> (threshold, how it was chosen)
DEFAULT_HOW = f"the default {DEFAULT_THRESHOLD:g}"


def chosen(model: str) -> tuple[float, str]:
    """The threshold chosen for ``model`` in this session and how; the default where none was chosen."""
    return st.session_state.get(KEY, {}).get(model, (DEFAULT_THRESHOLD, DEFAULT_HOW))


def remember(model: str, threshold: float, how: str) -> None:
    st.session_state.setdefault(KEY, {})[model] = (float(threshold), how)


def sentence(model: str, output: float, threshold: float, how: str, positive: str = OPERATING_CLASS) -> str:
    side = "at or above" if output >= threshold else "below"
    return (f"{model}'s {positive} output for this image, {output:.1%}, is {side} the threshold {threshold:.3f} "
            f"({how}; set it on the comparison page, tab Operating point).")


def show(model: str, probabilities: np.ndarray, classes: Sequence[str], positive: str = OPERATING_CLASS) -> None:
    """A caption: the upload's output of the positive class against the threshold chosen for ``model``."""
    if positive in classes:
        threshold, how = chosen(model)
        st.caption(sentence(model, float(probabilities[list(classes).index(positive)]), threshold, how, positive))
