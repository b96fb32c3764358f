"""Entry point: ``streamlit run dashboard/streamlit_app.py`` from the repository root.

Navigation only; each page is a script under ``views/``.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import streamlit as st

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))  # makes ``pipeline`` and ``dashboard`` importable

from dashboard import giveway, loaders  # noqa: E402  (needs the path above)
from dashboard.layout import disclaimer  # noqa: E402
from dashboard.memory import fix_malloc_thresholds  # noqa: E402

VIEWS = Path(__file__).resolve().parent / "views"

if not logging.getLogger().handlers:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
fix_malloc_thresholds()

st.set_page_config(page_title="Chest X-ray model workbench", page_icon=":material/radiology:", layout="wide")
page = st.navigation([
    st.Page(VIEWS / "compare.py", title="Compare models", icon=":material/leaderboard:", url_path="compare",
            default=True),
    st.Page(VIEWS / "explain.py", title="Explain an X-ray", icon=":material/visibility:", url_path="explain"),
    st.Page(VIEWS / "evaluate.py", title="Evaluate your X-rays", icon=":material/fact_check:", url_path="evaluate"),
    st.Page(VIEWS / "data.py", title="Data and augmentation", icon=":material/dataset:", url_path="data"),
    st.Page(VIEWS / "cards.py", title="Model cards", icon=":material/description:", url_path="cards"),
])
st.sidebar.caption("Research and teaching workbench for chest X-ray classifiers.")
disclaimer()
with giveway.pages.page():  # the background warm-up waits meanwhile
    page.run()
# After the page, so that neither these imports nor TensorFlow's ever delay the first page a visitor opens.
from dashboard import prefetch, warmup  # noqa: E402

prefetch.explain_modules()
warmup.keep_keras_session()
warmup.start(loaders.load_catalog)
