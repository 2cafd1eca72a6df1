"""Optional coordinator service (not built yet).

A well-known peer that any operator may run: a bootstrap address for new nodes,
a libp2p circuit relay for nodes behind NAT, and a read-only index and
matchmaking API over the capacity adverts it hears. The network works without
it; it only makes joining faster. It will reuse :mod:`node` as a passive peer.
"""
