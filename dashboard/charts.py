"""Plotly figures. Each function takes computed numbers and returns a figure; nothing is computed here."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from .compare import Curve

PERCENT_AXIS = {"tickformat": ".0%", "range": [0, 1.02]}
HEIGHT = 360


def _layout(figure: go.Figure, title: str, height: int = HEIGHT) -> go.Figure:
    figure.update_layout(title=title, height=height, margin={"l": 10, "r": 10, "t": 50, "b": 10},
                         legend={"orientation": "h", "y": -0.2})
    return figure


def interval_bars(frame: pd.DataFrame, title: str) -> go.Figure:
    """Bars of ``value`` per group and model, with ``low``-``high`` (95% interval) error bars."""
    figure = go.Figure()
    for model, rows in frame.groupby("model", sort=False):
        figure.add_bar(
            name=str(model), x=rows["group"], y=rows["value"],
            error_y={"type": "data", "symmetric": False,
                     "array": (rows["high"] - rows["value"]).clip(lower=0),
                     "arrayminus": (rows["value"] - rows["low"]).clip(lower=0)},
            hovertemplate="%{x}: %{y:.1%}<extra>" + str(model) + "</extra>",
        )
    figure.update_layout(barmode="group", yaxis=PERCENT_AXIS)
    return _layout(figure, title)


def _wrapped(name: str) -> str:
    return name.replace("_", " ").replace(" ", "<br>")


def confusion_heatmap(matrix: np.ndarray, classes: Sequence[str], title: str, normalised: bool) -> go.Figure:
    text = [[f"{v:.0%}" if normalised else f"{v:.0f}" for v in row] for row in matrix]
    figure = go.Figure(go.Heatmap(
        z=matrix, x=[_wrapped(name) for name in classes], y=list(classes), text=text, texttemplate="%{text}",
        colorscale="Blues", showscale=False, zmin=0, zmax=1 if normalised else None,
        hovertemplate="true %{y}, predicted %{x}: %{text}<extra></extra>",
    ))
    figure.update_xaxes(title="predicted", side="bottom", tickangle=0)
    figure.update_yaxes(title="true", autorange="reversed")
    return _layout(figure, title, height=320)


def curve_figure(curves: Sequence[Curve], kind: str, title: str) -> go.Figure:
    """ROC (kind "roc") or precision-recall (kind "pr") curves, one line per model."""
    figure = go.Figure()
    area = "AUC" if kind == "roc" else "AP"
    for curve in curves:
        figure.add_scatter(x=curve.x, y=curve.y, mode="lines", name=f"{curve.model} ({area} {curve.area:.3f})",
                           line_shape="hv" if kind == "pr" else "linear")
    if kind == "roc":
        figure.add_scatter(x=[0, 1], y=[0, 1], mode="lines", name="chance",
                           line={"dash": "dot", "color": "grey"})
        figure.update_xaxes(title="false positive rate (1 - specificity)", **PERCENT_AXIS)
        figure.update_yaxes(title="true positive rate (recall)", **PERCENT_AXIS)
    else:
        figure.update_xaxes(title="recall", **PERCENT_AXIS)
        figure.update_yaxes(title="precision", **PERCENT_AXIS)
    return _layout(figure, title)


def reliability_figure(bins: dict[str, pd.DataFrame]) -> go.Figure:
    """Accuracy against mean confidence per calibration bin; the diagonal is perfect calibration."""
    figure = go.Figure()
    figure.add_scatter(x=[0, 1], y=[0, 1], mode="lines", name="perfect calibration",
                       line={"dash": "dot", "color": "grey"})
    for model, frame in bins.items():
        figure.add_scatter(x=frame["confidence"], y=frame["accuracy"], mode="lines+markers", name=model,
                           customdata=frame["count"],
                           hovertemplate="confidence %{x:.0%}, accuracy %{y:.0%}, %{customdata} images")
    figure.update_xaxes(title="mean confidence of the predicted class", **PERCENT_AXIS)
    figure.update_yaxes(title="accuracy", **PERCENT_AXIS)
    return _layout(figure, "Reliability diagram (test set)")


def split_counts(counts: dict[str, dict[str, int]], title: str) -> go.Figure:
    """Images per class (x) and split (colour)."""
    figure = go.Figure()
    for split, per_class in counts.items():
        figure.add_bar(name=split, x=list(per_class), y=list(per_class.values()), text=list(per_class.values()))
    figure.update_layout(barmode="group")
    figure.update_yaxes(title="images")
    return _layout(figure, title)


def source_bars(frame: pd.DataFrame) -> go.Figure:
    """Accuracy per data source (x) and model (colour)."""
    figure = go.Figure()
    for model, rows in frame.groupby("model", sort=False):
        figure.add_bar(name=str(model), x=rows["source"], y=rows["accuracy"], customdata=rows["test images"],
                       hovertemplate="%{x}: %{y:.1%} of %{customdata} images<extra>" + str(model) + "</extra>")
    figure.update_layout(barmode="group", yaxis=PERCENT_AXIS)
    return _layout(figure, "Test accuracy per data source")


def mark_point(figure: go.Figure, x: float, y: float, label: str) -> go.Figure:
    """A marker named "operating point" on a curve figure (x, y in the figure's units)."""
    figure.add_scatter(x=[x], y=[y], mode="markers", name="operating point", text=[label],
                       marker={"size": 14, "symbol": "x", "color": "black"},
                       hovertemplate="%{text}<extra></extra>")
    return figure
