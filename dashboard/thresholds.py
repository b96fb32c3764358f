"""An image's model outputs as the explain page shows them: ranked, and the COVID output against the
threshold chosen for the model on the comparison page.

Kept in ``st.session_state`` under a key of its own (not a widget's, which Streamlit drops when its
widget is not drawn), so a threshold survives switching tabs and pages within a session.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import streamlit as st

from pipeline.config import DEFAULT_THRESHOLD, OPERATING_CLASS

OUTPUTS_NOTE = "Model outputs (softmax), not calibrated probabilities of disease."
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


def ranked(probabilities: np.ndarray, classes: Sequence[str]) -> list[tuple[str, float]]:
    """(class, output) pairs, the highest output first."""
    return [(classes[i], float(probabilities[i])) for i in np.argsort(probabilities, kind="stable")[::-1]]


def show_outputs(title: str, probabilities: np.ndarray, classes: Sequence[str]) -> None:
    """One bar per class, the highest first: native bars, which draw at once where a chart library would
    first have to load in the browser."""
    st.markdown(f"**{title}**")
    for name, output in ranked(probabilities, classes):
        st.progress(min(max(output, 0.0), 1.0), text=f"{name}: {output:.1%}")
    st.caption(OUTPUTS_NOTE)


def show(model: str, probabilities: np.ndarray, classes: Sequence[str], positive: str = OPERATING_CLASS) -> None:
    """A caption: the upload's output of the positive class against the threshold chosen for ``model``."""
    if positive in classes:
        threshold, how = chosen(model)
        st.caption(sentence(model, float(probabilities[list(classes).index(positive)]), threshold, how, positive))
