"""The append-only record of administrative changes."""
