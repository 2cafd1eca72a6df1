"""The one node program, ``pictor``.

A thin trio runtime around the sans-I/O machines in :mod:`protocol`: the libp2p
host, the SQLite store, content transfer, renderer backends, the GPU probe, the
worker / client / checker role drivers, the local HTTP API and the CLI.
"""
