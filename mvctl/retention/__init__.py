"""Retention: which versions gc keeps, and pruning the rest (mvctl gc)."""
