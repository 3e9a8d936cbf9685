"""Whole-scene prediction: per-pixel work shared between overlapping patches, window by window."""
