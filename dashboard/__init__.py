"""Streamlit dashboard: compare trained models and show their attention on chest X-rays.

Research and teaching use only; not a medical device.
"""
