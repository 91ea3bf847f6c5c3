"""Parcours: the journey pipeline (pure core in `streams.core`, adapters around it)."""
