"""Reports from the field: one observation by one reporter, immutable once stored."""
