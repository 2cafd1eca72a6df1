"""Content addressing, the local content store and chunked transfer.

Scenes and frames are named by CIDv1 (raw codec, sha2-256, base32): the same
string IPFS gives a file of up to one chunk, so a CID is checkable by anyone
with the bytes and nothing else.
"""
