"""The floors of the browser benchmarks, served the same way as the app.

``bench/cold_start.py``: a one-table page. ``bench/browser.py`` opens it with ``?upload``: a page that
only decodes an upload (as the app does) and shows it three times, with no model.
"""

import pandas as pd
import streamlit as st

if "upload" in st.query_params:
    from pipeline.images import decode_image

    upload = st.file_uploader("Upload a chest X-ray")
    if upload is not None:
        gray = decode_image(upload.getvalue(), upload.name)
        for column, title in zip(st.columns(3), ("Original", "Grad-CAM", "Grad-CAM++")):
            column.image(gray, caption=title, width="stretch")
else:
    st.title("Compare models")
    st.dataframe(pd.DataFrame({"model": ["A", "B"], "accuracy": [0.9, 0.8]}), hide_index=True)
