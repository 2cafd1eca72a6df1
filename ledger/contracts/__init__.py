"""Vyper sources of the Pictor contracts (package so the .vy files ship)."""
