"""How much disk the node directory takes: the database (with its WAL), the attachment
files, the staged uploads, and what is free on its file system (``globe-node status``,
``GET /api/status``, the metrics).  Sizes of files, never names: no case material."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select

from globe_node import db
from globe_node.config import NodeConfig
from globe_node.context import NodeContext

__all__ = ["DiskUse", "disk_use"]


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


@dataclass(frozen=True, slots=True)
class DiskUse:
    """Bytes the node directory takes, and those free on its file system."""

    database: int  # node.db, its WAL and shared-memory files
    blobs: int  # attachment files of sent and received messages
    uploads: int  # staged uploads and uploads arriving
    free: int


async def disk_use(ctx: NodeContext) -> DiskUse:
    """Measure the node directory (a scan of ``blobs/``, off the event loop)."""
    async with ctx.store.read() as s:
        staged = set((await s.execute(select(db.UploadRow.blob))).scalars())
    return await asyncio.to_thread(_measure, ctx.config, f"{ctx.me}.", staged)


def _measure(config: NodeConfig, mine: str, staged: set[str]) -> DiskUse:
    database = sum(
        _size(config.db_path.with_name(config.db_path.name + suffix))
        for suffix in ("", "-wal", "-shm")
    )
    blobs = uploads = 0
    with contextlib.suppress(FileNotFoundError), os.scandir(config.blob_dir) as entries:
        for e in entries:
            if not e.is_file(follow_symlinks=False):
                continue
            size = e.stat(follow_symlinks=False).st_size
            name = e.name.removesuffix(".part")
            if e.name.endswith(".part") or (
                name.startswith(mine) and name.removeprefix(mine) in staged
            ):
                uploads += size
            else:
                blobs += size
    return DiskUse(database, blobs, uploads, shutil.disk_usage(config.directory).free)
