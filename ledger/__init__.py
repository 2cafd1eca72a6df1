"""Settlement on an EVM chain.

The escrow contract (Vyper source in ``ledger/contracts``, compiled artifact in
``ledger/artifacts``), EIP-712 payment vouchers, the web3 client that the node
calls from trio worker threads, and the chain backends (in-process py-evm,
anvil, any JSON-RPC URL).
"""
