"""The delta sync: extract by cursor, validate, load through staging, move the watermark."""
