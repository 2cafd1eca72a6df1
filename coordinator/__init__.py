"""Optional coordinator: a public bootstrap node that relays for nodes behind NAT.

``pictor coordinator run`` (see :mod:`coordinator.service`). The network works
without it; it builds on :mod:`node` and node/ never imports it at module level.
"""
