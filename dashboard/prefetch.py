"""Have the browser fetch the explain page's frontend modules while it is idle on another page.

Streamlit's frontend loads each kind of element from a JavaScript module of its own, the first time a page
shows one (in headless Chromium, the first switch from the comparison page to the explain page fetched 34
modules: the uploader, select box, slider, toggle, segmented control and progress bar, and what they import).
Once per browser session, after its first page has run, a script in the sidebar imports those modules when
the browser is idle, so that the switch finds them loaded.

The module files carry a content hash that changes with each Streamlit release, so their names are read from
Streamlit's installed static folder, never written here; the browser's own ``import`` fetches what each of
them imports in turn.
"""

from __future__ import annotations

import functools
import json
import logging
from pathlib import Path

import streamlit as st

log = logging.getLogger(__name__)

STATIC_JS = Path(st.__file__).resolve().parent / "static" / "static" / "js"
ADDRESS = "./static/js/{}"  # relative, as Streamlit's own index.html names them: works under any base URL path
# The modules of the elements the explain page draws, by the name their file starts with (``<name>.<hash>.js``).
EXPLAIN_MODULES = (
    "FileUploader",  # st.file_uploader
    "Selectbox",  # st.selectbox
    "ButtonGroup",  # st.segmented_control
    "Slider",  # st.slider
    "Checkbox",  # st.toggle, st.checkbox
    "Progress",  # st.progress: the model outputs, the warm-up's progress
    "Spinner",  # the cached loaders' spinners
    "ImageList",  # st.image
    "DownloadButton",  # st.download_button
)
IDLE_FALLBACK_MS = 2000  # browsers without requestIdleCallback import after this delay instead
SESSION_KEY = "explain-modules-prefetched"


def module_files(name: str) -> list[Path]:
    """The installed module files of the element ``name``: ``<name>.<hash>.js``, nothing longer."""
    return [path for path in sorted(STATIC_JS.glob(f"{name}.*.js")) if len(path.name.split(".")) == 3]


@functools.cache
def addresses() -> tuple[str, ...]:
    """The relative address of each module in ``EXPLAIN_MODULES`` found in the installed Streamlit."""
    found = []
    for name in EXPLAIN_MODULES:
        files = module_files(name)
        if not files:
            log.warning("no %s module in %s: the explain page loads it when first opened", name, STATIC_JS)
        found += [ADDRESS.format(path.name) for path in files]
    return tuple(found)


def script(paths: tuple[str, ...]) -> str:
    """A script that imports ``paths`` once the browser is idle; a failed import only leaves the module to
    load when its page needs it."""
    return ("<script>(() => {"
            f"const paths = {json.dumps(list(paths))};"
            "const load = () => paths.forEach((path) => import(path).catch(() => {}));"
            f"(window.requestIdleCallback || ((run) => setTimeout(run, {IDLE_FALLBACK_MS})))(load);"
            "})();</script>")


def explain_modules() -> None:
    """Emit the prefetching script in the sidebar, on the first script run of a browser session only: the
    modules stay in the browser once imported, and the element left out of later runs is simply removed."""
    if st.session_state.get(SESSION_KEY) or not addresses():
        return
    st.sidebar.html(script(addresses()), unsafe_allow_javascript=True)
    st.session_state[SESSION_KEY] = True
