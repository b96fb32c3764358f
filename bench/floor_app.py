"""The floor of bench/cold_start.py: a one-table Streamlit page, served the same way as the app."""

import pandas as pd
import streamlit as st

st.title("Compare models")
st.dataframe(pd.DataFrame({"model": ["A", "B"], "accuracy": [0.9, 0.8]}), hide_index=True)
