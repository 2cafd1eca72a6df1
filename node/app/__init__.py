"""The node's lifecycle: compose keys, store, network, node and API; stop on signals."""
