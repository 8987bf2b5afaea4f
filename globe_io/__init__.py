"""I/O shared by the hub, the member node and the administrators' tools.

``protocol`` is the sans-IO core; this package is the thin layer of I/O that
more than one deployable needs, so that none of them imports another: the
hub API client, the project's API errors and their problem+json form, the
HTTP body reader and rate limiter.  It imports ``protocol`` and third-party
libraries only (ARCHITECTURE.md §1).
"""
