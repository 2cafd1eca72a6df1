"""Deterministic discrete-event simulations of a Pictor network.

A seeded event loop of its own that drives the very same :mod:`protocol`
machines the node runs, with modelled network, rendering, chain, churn,
workload and adversaries. Same seed, same bytes out.
"""
