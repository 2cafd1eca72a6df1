"""The public work record in the node: keep, persist, serve and fetch it (protocol.record)."""
