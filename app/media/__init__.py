"""Photos: evidence attached to reports, stored content-addressed with EXIF stripped."""
