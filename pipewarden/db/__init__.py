"""Engines and connections."""
