"""Filled in by the data work (see docs/CONTRACTS.md)."""
