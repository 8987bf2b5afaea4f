"""The membership administrators' tool (``globe-admin``), run on the workstations that hold
the admin keys (R1): admin keys, the genesis ceremony and the admission workflow.

It depends on ``protocol``, ``globe_io`` and click only: never on the hub or the node
packages, so an admin workstation needs neither the hub's database stack (SQLAlchemy,
asyncpg, Alembic) nor anything else of a server.
"""
