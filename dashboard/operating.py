"""Two tabs of the comparison page: a COVID operating point per model, and the paired comparison of models.

Drawing only: the figures come from ``pipeline.operating``, ``pipeline.paired`` and ``dashboard.analysis``.
"""

from __future__ import annotations

import streamlit as st

from pipeline.config import DEFAULT_THRESHOLD, OPERATING_CLASS, OPERATING_SENSITIVITY, VAL_PREDICTIONS_FILE
from pipeline.operating import one_vs_rest, presets
from pipeline.paired import PairResult

from . import analysis, compare, loaders, thresholds
from .catalog import ModelEntry

MANUAL = "Manual"
NO_PRESETS = (
    "The presets (sensitivity >= {target:.0%}, Youden) are chosen on the validation split, never on test, and "
    "this model folder has no validation predictions ({file}, which `python -m pipeline train` writes). "
    "Set the threshold by hand: it starts at {default:g}, which is not the same as taking the top class "
    "(argmax can call {positive} below {default:g} when the other outputs are lower still)."
)
ABOUT_PAIRED = (
    "Models tested on the same images are compared image by image. A difference is called real when its "
    "paired bootstrap 95% interval (1,000 resamples of the images, both models at once) excludes zero, or when "
    "McNemar's test on correct/incorrect (exact binomial below 25 discordant images), Holm-adjusted over the "
    "pairs, gives p < 0.05. Differences are the first model minus the second, in percentage points."
)


def _validation_presets(entry: ModelEntry) -> tuple[dict[str, float], int]:
    """Preset thresholds from the model's validation predictions, and how many images chose them."""
    frame = loaders.predictions(str(entry.folder), entry.stamp, VAL_PREDICTIONS_FILE)
    scores = analysis.class_scores(frame) if frame is not None else None
    if scores is None or scores[0].all() or not scores[0].any():
        return {}, 0
    return presets(*scores), len(scores[0])


def _threshold(entry: ModelEntry) -> tuple[float, str]:
    """The threshold picked on the page (a preset or by hand), remembered for the explain page."""
    choices, n_val = _validation_presets(entry)
    if not choices:
        st.info(NO_PRESETS.format(target=OPERATING_SENSITIVITY, file=VAL_PREDICTIONS_FILE,
                                  default=DEFAULT_THRESHOLD, positive=OPERATING_CLASS), icon=":material/tune:")
    remembered, _ = thresholds.chosen(entry.name)
    choice = st.radio("Threshold", [MANUAL, *choices], horizontal=True, key=f"operating-choice-{entry.name}")
    if choice == MANUAL:
        threshold = st.slider(f"Threshold on the {OPERATING_CLASS} output", 0.0, 1.0, remembered, 0.01,
                              key=f"operating-threshold-{entry.name}")
        how = "set by hand"
    else:
        threshold, how = choices[choice], f"{choice}, chosen on {n_val} validation images"
        st.caption(f"{how}: threshold {threshold:.3f}.")
    thresholds.remember(entry.name, threshold, how)
    return threshold, how


def operating_point(entries: list[ModelEntry]) -> None:
    from . import charts  # only when this tab is open

    frames = {e.name: f for e in entries if (f := loaders.predictions(str(e.folder), e.stamp)) is not None
              and analysis.class_scores(f) is not None}
    if not frames:
        st.info(f"No model has test predictions with a {OPERATING_CLASS} output (predictions.csv).")
        return
    st.caption(f"{OPERATING_CLASS} against the rest: the model calls {OPERATING_CLASS} where its {OPERATING_CLASS} "
               "output is at or above the threshold. Figures on the test split, with Wilson 95% intervals.")
    name = st.selectbox("Model", list(frames), key="operating-model")
    entry = next(e for e in entries if e.name == name)
    threshold, _ = _threshold(entry)
    point = one_vs_rest(*analysis.class_scores(frames[name]), threshold)
    for column, (label, rate) in zip(st.columns(4), (("Sensitivity", point.sensitivity),
                                                     ("Specificity", point.specificity),
                                                     ("PPV", point.ppv), ("NPV", point.npv))):
        column.metric(label, f"{rate.value:.1%}" if rate.trials else "-")
        column.caption(analysis.interval_text(rate))
    st.markdown(analysis.operating_sentence(name, point))
    left, right = st.columns([1, 2])
    left.table(analysis.two_by_two(point))
    roc, _ = compare.class_curves({name: frames[name]}, OPERATING_CLASS)
    if roc:
        x, y = point.roc_point
        figure = charts.curve_figure(roc, "roc", f"ROC, {OPERATING_CLASS} vs rest, {name}")
        right.plotly_chart(charts.mark_point(figure, x, y, f"threshold {threshold:.3f}"), key="operating-roc")


def paired_comparison(entries: list[ModelEntry], paired: tuple[list[PairResult], list[str]]) -> None:
    results, notes = paired
    for note in notes:
        st.info(note, icon=":material/compare_arrows:")
    if not results:
        return
    st.caption(ABOUT_PAIRED)
    real = [f"{r.first} and {r.second}" for r in results if r.differs]
    st.markdown(f"**{len(real)} of {len(results)} pairs differ" + (f": {'; '.join(real)}.**" if real else ".**"))
    st.dataframe(analysis.pair_table(results), hide_index=True)
    for result in results:
        st.markdown(analysis.pair_sentence(result))
