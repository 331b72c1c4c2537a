"""burnban: grid-based burning-ban supervision service."""
