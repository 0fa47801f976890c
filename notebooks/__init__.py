"""The walkthrough and the exercises as Jupyter notebooks, built from their sources (build.py).

Not part of the installed package: run from the repository's root, `python -m notebooks`.
"""
