"""The hub's OpenAPI document in parts; :mod:`hub.openapi` assembles and serves it."""
