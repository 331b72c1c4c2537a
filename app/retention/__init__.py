"""Retention: rows kept only as long as they serve."""
