"""The administrative grid: district → township → village cells."""
