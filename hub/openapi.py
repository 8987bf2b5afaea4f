"""The OpenAPI 3.1 document of the hub API v1, served at ``/v1/openapi.json``."""

from __future__ import annotations

from typing import Any

__all__ = ["openapi_document"]


def openapi_document() -> dict[str, Any]:
    """The OpenAPI document (built on each call; it is small)."""
    return {
        "openapi": "3.1.0",
        "info": {"title": "GlobE Link hub API", "version": "1"},
        "paths": {},
    }
