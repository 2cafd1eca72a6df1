"""Networking: the ``Network`` port, its libp2p and in-memory implementations,
the inbound gate (decode, replay guard, peer scoring) and discovery."""
