"""Filled in by the packnet work (see docs/CONTRACTS.md)."""
