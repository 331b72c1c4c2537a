"""Where the two databases differ: geometry storage and spatial queries."""
