"""The embedded demo: sample sources with realistic mess, and the whole path run over them."""
