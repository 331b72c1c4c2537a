"""The demo set-up: a synthetic 七星区-shaped grid, its bureaus and one user per role."""
