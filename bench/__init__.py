"""The benchmark: burnban over HTTP on SQLite and PostGIS, side by side with baselines.

Run `python -m bench --help`; bench/README.md says what each figure means.
"""
