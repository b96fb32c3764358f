"""The comparison page's headline as a forest plot drawn in SVG, without a chart library.

It is the first picture a visitor sees, and the first plotly chart of a browser tab waits for
plotly.js to load and parse: on two cores that made the comparison page 1.77x as slow as a page
with one table (``bench/cold_start.py``). An SVG image draws at once.
"""

from __future__ import annotations

from xml.sax.saxutils import escape

import pandas as pd

ROW, HEADER, LABEL, PLOT, NOTE = 22, 44, 130, 380, 440  # pixels: row height, header, three columns
COLOURS = ("#1f6f8b", "#e0a458", "#6c8f3f", "#8b1f5c")  # one per group, in order
TICKS = (0.0, 0.25, 0.5, 0.75, 1.0)


def _x(value: float) -> float:
    return LABEL + PLOT * min(max(float(value), 0.0), 1.0)


def forest_svg(frame: pd.DataFrame, title: str) -> str:
    """Per model, one row per ``group``: a bar to ``value`` with its ``low``-``high`` interval, the figures
    and the ``note`` in words beside it. ``frame`` has the columns of ``analysis.headline``."""
    groups = list(dict.fromkeys(frame["group"]))
    height = HEADER + ROW * len(frame) + 24
    width = LABEL + PLOT + NOTE
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="{width}" '
             f'height="{height}" font-family="sans-serif" font-size="12">',
             f'<text x="0" y="14" font-weight="bold">{escape(title)}</text>']
    for index, group in enumerate(groups):
        colour = COLOURS[index % len(COLOURS)]
        parts.append(f'<rect x="{LABEL + 190 * index}" y="24" width="10" height="10" fill="{colour}"/>'
                     f'<text x="{LABEL + 190 * index + 14}" y="33">{escape(str(group))}</text>')
    bottom = HEADER + ROW * len(frame)
    for tick in TICKS:
        parts.append(f'<line x1="{_x(tick):.1f}" y1="{HEADER - 4}" x2="{_x(tick):.1f}" y2="{bottom}" stroke="#d5dde2"/>'
                     f'<text x="{_x(tick):.1f}" y="{bottom + 16}" text-anchor="middle">{tick:.0%}</text>')
    y = HEADER
    for model, rows in frame.groupby("model", sort=False):
        parts.append(f'<text x="0" y="{y + ROW - 6}" font-weight="bold">{escape(str(model))}</text>')
        for row in rows.itertuples():
            colour = COLOURS[groups.index(row.group) % len(COLOURS)]
            middle = y + ROW / 2
            if pd.isna(row.value):  # a model whose metrics lack the figure: said in words, no bar
                parts.append(f'<text x="{LABEL + 4}" y="{y + ROW - 7}">not in its metrics.json</text>')
                y += ROW
                continue
            interval = not (pd.isna(row.low) or pd.isna(row.high))
            parts.append(f'<rect x="{LABEL}" y="{y + 4}" width="{_x(row.value) - LABEL:.1f}" height="{ROW - 8}" '
                         f'fill="{colour}" opacity="0.85"/>')
            if interval:
                parts.append(f'<line x1="{_x(row.low):.1f}" y1="{middle}" x2="{_x(row.high):.1f}" y2="{middle}" '
                             f'stroke="#1b2a33" stroke-width="1.5"/>')
            figures = f"{row.value:.1%} ({row.low:.1%}-{row.high:.1%})" if interval else f"{row.value:.1%}"
            parts.append(f'<text x="{LABEL + PLOT + 8}" y="{y + ROW - 7}">{figures}, {escape(str(row.note))}</text>')
            y += ROW
    parts.append("</svg>")
    return "".join(parts)
