"""Compiled contract artifacts, written by ``python -m ledger.build``."""
