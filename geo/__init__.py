"""Pure geometry for burnban: coordinate systems, distances, grid validation, demo data."""
