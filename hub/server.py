"""Wiring: files in the hub directory → a running :class:`~hub.service.HubService` and app."""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import signal
import time
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncEngine

from globe_io import systemd
from globe_io.errors import ConfigError
from globe_io.files import load_genesis, load_signing_key
from globe_io.httpguard import GuardedRunner, start_site
from hub import db
from hub.blobs import BlobStore
from hub.config import HubConfig
from hub.push import Pusher
from hub.push import add_routes as add_push_routes
from hub.routing import Router, RoutingLimits
from hub.service import HubService
from hub.web import METRICS_KEY, create_app
from protocol.keys import SigningKey

__all__ = [
    "HUB_KEY_PURPOSE",
    "HubRuntime",
    "load_genesis",
    "load_hub_key",
    "load_signing_key",
    "open_hub",
    "serve",
]

log = logging.getLogger("globe.hub")

HUB_KEY_PURPOSE = "hub-signing-key"


def read_passphrase(passphrase_file: Path | None) -> bytes:
    """The key passphrase from a file or ``GLOBE_HUB_PASSPHRASE`` (never from argv)."""
    if passphrase_file is not None:
        try:
            return passphrase_file.read_bytes().rstrip(b"\r\n")
        except OSError as exc:
            raise ConfigError(f"cannot read passphrase file {passphrase_file}: {exc}") from None
    value = os.environ.get("GLOBE_HUB_PASSPHRASE")
    if not value:
        raise ConfigError("set GLOBE_HUB_PASSPHRASE or pass --passphrase-file")
    return value.encode()


def load_hub_key(path: Path, passphrase: bytes) -> SigningKey:
    """Open the sealed hub key."""
    return load_signing_key(path, passphrase, purpose=HUB_KEY_PURPOSE, what="hub key")


@dataclass(slots=True)
class HubRuntime:
    """A started hub: engine, service and app."""

    engine: AsyncEngine
    service: HubService
    app: web.Application


async def open_hub(
    config: HubConfig, passphrase: bytes, *, genesis_path: Path | None = None
) -> HubRuntime:
    """Load key and genesis, migrate the database, verify the stored log, build the app."""
    config.limits.check()
    hub_key = load_hub_key(config.key_path, passphrase)
    genesis = load_genesis(genesis_path or config.genesis_path)
    if genesis.hub_key != hub_key.verify_key:
        raise ConfigError(
            "the genesis names another hub key; this hub refuses to serve it "
            f"(this hub's key: {hub_key.key_id})"
        )
    engine = db.make_engine(config.database_url)
    try:
        await db.migrate(engine)
        service = HubService(
            genesis=genesis,
            hub_key=hub_key,
            engine=engine,
            clock=time.time,
            certificate_days=config.certificate_days,
            clock_skew=config.limits.clock_skew,
        )
        await service.start()
    except BaseException:
        await engine.dispose()
        raise
    lim = config.limits
    routing = RoutingLimits(
        max_envelope=lim.max_envelope,
        mailbox_count=lim.mailbox_count,
        mailbox_bytes=lim.mailbox_bytes,
        batch_max=lim.batch_max,
        page_size=lim.page_size,
    )
    router = Router(service, limits=routing)
    pusher = Pusher(router, service, database_url=config.database_url)
    router.on_commit = pusher.notify  # committed mailbox items wake the recipients' streams
    app = create_app(
        service,
        router=router,
        clock=time.monotonic,
        max_body=lim.max_body,
        rate_per_second=lim.rate_per_second,
        burst=lim.burst,
        page_size=lim.page_size,
        blobs=BlobStore(
            service,
            config.directory / "blobs",
            max_blob=lim.max_blob,
            quota_bytes=lim.blob_quota,
            grace=lim.blob_grace,
        ),
    )
    add_push_routes(app, pusher)
    app[METRICS_KEY].gauge(
        "globe_hub_disk_free_bytes",
        "Free bytes on the file system of the hub directory (blobs; the SQLite database).",
        lambda: shutil.disk_usage(config.directory).free,
    )

    async def close(_app: web.Application) -> None:
        await engine.dispose()

    app.on_cleanup.append(close)
    return HubRuntime(engine, service, app)


async def serve(
    config: HubConfig,
    passphrase: bytes,
    *,
    host: str,
    port: int,
    genesis_path: Path | None = None,
    ready: asyncio.Event | None = None,
) -> None:
    """Run until SIGTERM or SIGINT, then shut down gracefully."""
    runtime = await open_hub(config, passphrase, genesis_path=genesis_path)
    metrics = runtime.app[METRICS_KEY]
    runner = GuardedRunner(
        runtime.app, limits=config.http, refused=lambda exc: metrics.refuse(exc.slug),
        logger=logging.getLogger("globe.hub.http"), access_log=None, handle_signals=False,
        shutdown_timeout=10,
    )  # fmt: skip
    await runner.setup()
    try:
        port = await start_site(runner, host, port)
    except BaseException:  # e.g. the port is taken: close the database before failing
        await runner.cleanup()
        raise
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    log.info("hub serving on http://%s:%d (log seq %d)", host, port, runtime.service.state.seq)
    print(f"globe-hub: serving on http://{host}:{port}", flush=True)
    systemd.notify(f"READY=1\nSTATUS=serving on {host}:{port}")
    if ready is not None:
        ready.set()
    try:
        await stop.wait()
    finally:
        await runner.cleanup()
