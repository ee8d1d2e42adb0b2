"""Filled in by the densedepth work (see docs/CONTRACTS.md)."""
