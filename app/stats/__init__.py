"""The scorecard (考核): what happened under a grid cell in a period, and how fast."""
