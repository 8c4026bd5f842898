"""Heads and necks: plain modules that read top to bottom."""
