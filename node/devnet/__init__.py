"""A local Pictor network on loopback: anvil, contracts, and ``pictor node run`` processes."""
