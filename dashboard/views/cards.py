"""Model cards: each model's README.md, and the citations of the data sources."""

from __future__ import annotations

import streamlit as st

from dashboard import layout, loaders
from pipeline.config import CARD_FILE

CITATIONS = """
- M.E.H. Chowdhury, T. Rahman, A. Khandakar, R. Mazhar, M.A. Kadir, Z.B. Mahbub, K.R. Islam, M.S. Khan,
  A. Iqbal, N. Al-Emadi, M.B.I. Reaz, M.T. Islam, "Can AI help in screening Viral and COVID-19 pneumonia?",
  *IEEE Access* 8, 2020, 132665-132676. (COVID-19 Radiography Database)
- T. Rahman, A. Khandakar, Y. Qiblawey, A. Tahir, S. Kiranyaz, S.B.A. Kashem, M.T. Islam, S. Al Maadeed,
  S.M. Zughaier, M.S. Khan, M.E.H. Chowdhury, "Exploring the effect of image enhancement techniques on
  COVID-19 detection using chest X-ray images", *Computers in Biology and Medicine* 132, 2021, 104319.
  (COVID-19 Radiography Database)
- D.S. Kermany et al., "Identifying Medical Diagnoses and Treatable Diseases by Image-Based Deep Learning",
  *Cell* 172(5), 2018, 1122-1131. (paediatric pneumonia and normal images; data: Mendeley Data,
  doi:10.17632/rscbjbr9sj.2, CC BY 4.0)
- J.P. Cohen, P. Morrison, L. Dao, K. Roth, T.Q. Duong, M. Ghassemi, "COVID-19 Image Data Collection:
  Prospective Predictions Are the Future", arXiv:2006.11988, 2020. (covid-chestxray-dataset)
"""


def main() -> None:
    opened = layout.open_page("Model cards", lambda c: c.entries, "with a readable config.json")
    if opened is not None:
        _, entries = opened
        for tab, entry in zip(st.tabs([entry.name for entry in entries]), entries):
            card = loaders.model_card(str(entry.folder), entry.stamp)
            if card is None:
                tab.warning(f"{entry.folder}: {CARD_FILE} is missing or unreadable.")
            else:
                tab.markdown(card)
    st.subheader("Data sources")
    st.markdown("Please cite the data sources of any model you report on:" + CITATIONS)
    st.caption("The sample X-rays shipped with the dashboard list their own sources and licences "
               "on the Explain page and in `dashboard/samples/README.md`.")


main()
