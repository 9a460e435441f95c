"""The node agent: one trio nursery that owns everything a node runs.

Start-up, in order (each step's failure is an :class:`AgentError` with a message for the
operator, and nothing later runs):

1. Signals: SIGINT and SIGTERM are caught from the very start, so a stop request that arrives
   while the journal is still opening is honoured as soon as serving begins.
2. The data directory is created (0700) and locked: an exclusive ``flock`` on
   ``<data_dir>/agent.lock``, held for the life of the process, which holds our pid. A second
   agent on the same directory fails with "another zeronode agent is using DIR (pid N)".
   The kernel drops the lock when the process dies, so a crash never leaves a stale lock.
3. The root credentials are loaded or created (:mod:`zeronode.credentials`).
4. The journal and the blob store are opened, then the cluster node (``cluster.node``) under
   the journal's node id: it founds a one-node cluster, rejoins its own, or joins the one
   ``--join`` names in the background; the cluster port is bound before HTTP is served. The
   AWS app is built from a :class:`~zeronode.node.NodeServices`.
5. HTTP is served on one port (:mod:`zeronode.http`); the node is *ready* when it listens,
   and ``ready(node)`` is called then.

Stopping: the first SIGINT/SIGTERM (or ``stop.set()``) starts a graceful shutdown: the
listener closes, requests in flight get ``settings.shutdown_grace`` seconds to finish, the
apps' lifespan shutdown runs, the node leaves the cluster gracefully, the journal is closed, ``agent.stopped`` is logged and
:func:`run_agent` returns normally (the CLI then exits 0). A second signal cuts the grace
period short; the journal is still closed properly.

All blocking work (mkdir, the lock file, the credentials file) runs in worker threads.
"""

from __future__ import annotations

import errno
import fcntl
import os
import signal
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager, nullcontext
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import trio

from cluster.discovery import parse_seed
from cluster.node import ClusterError, ClusterNode, open_cluster_node
from cluster.swim import SwimConfig
from zeronode import __version__
from zeronode.config import ConfigError, Settings, ensure_data_dir
from zeronode.credentials import CredentialsError, load_or_create
from zeronode.http.admin import create_admin_app
from zeronode.http.dispatch import Dispatcher
from zeronode.http.server import ListenError, serve
from zeronode.logs import get_logger
from zeronode.node import ASGIApp, NodeServices
from zeronode.replication import Replication, open_replication
from zeronode.status import meta_provider
from zeronode.storage import StorageError, open_blob_store
from zeronode.storage.replicas import Catalog

LOCK_FILE = "agent.lock"
JOURNAL_FILE = "journal.sqlite3"
CLUSTER_DIR = "cluster"

_log = get_logger(__name__)


class AgentError(Exception):
    """The agent cannot run; the message says why, for the operator."""


class DataDirInUse(AgentError):
    """Another agent holds the data directory's lock."""


@dataclass(frozen=True)
class Wiring:
    """The parts of a node built elsewhere: the journal and the AWS app.

    ``open_journal(path)`` is an async context manager yielding a journal (``node_id``,
    ``position()``); ``build_aws_app(node)`` returns the ASGI app for the AWS APIs.
    ``referenced_blobs(journal)`` names every blob the journal's projections still point at;
    with it, blobs written before a crash but never committed are swept at start (without
    it nothing is swept). ``cluster``: run the cluster node and replication (the real wiring
    does; a test wiring's fake journal has no real node id to give it); ``blob_catalog``
    names every referenced blob with its segment, for the copies of object bytes. Tests pass their own;
    :func:`default_wiring` gives the real ones.
    """

    open_journal: Callable[[Path], AbstractAsyncContextManager[Any]]
    build_aws_app: Callable[[NodeServices], ASGIApp]
    referenced_blobs: Callable[[Any], Awaitable[set[str]]] | None = None
    cluster: bool = False
    blob_catalog: Catalog | None = None


def default_wiring() -> Wiring:
    """The real journal and AWS services (imported here: the agent is their only user)."""
    try:
        from zeronode.journal import open_journal
        from zeronode.services import all_projections, build_aws_app, referenced_blobs
        from zeronode.services.s3.segments import blob_catalog
    except ImportError as error:
        raise AgentError(f"this zeronode build is incomplete: {error}") from error

    def open_node_journal(path: Path) -> AbstractAsyncContextManager[Any]:
        return open_journal(path, all_projections())

    return Wiring(
        open_journal=open_node_journal,
        build_aws_app=build_aws_app,
        referenced_blobs=referenced_blobs,
        cluster=True,
        blob_catalog=blob_catalog,
    )


async def run_agent(
    settings: Settings,
    *,
    ready: Callable[[NodeServices], object] | None = None,
    stop: trio.Event | None = None,
    env: Mapping[str, str] | None = None,
    wiring: Wiring | None = None,
) -> None:
    """Run a node until SIGINT/SIGTERM or ``stop`` is set, then shut it down gracefully.

    ``env`` (default ``os.environ``) is where explicit credentials are looked up. Must run in
    the main thread (signal handling). Raises :class:`AgentError` if the node cannot start,
    :class:`~zeronode.config.ConfigError` or :class:`~zeronode.credentials.CredentialsError`
    for a bad data directory or credentials.
    """
    stop = trio.Event() if stop is None else stop
    env = os.environ if env is None else env
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        try:
            wiring = default_wiring() if wiring is None else wiring
            await _run(settings, ready, stop, signals, env, wiring)
        except StorageError as error:
            raise AgentError(f"cannot open the object disks: {error}") from None
        except BaseExceptionGroup as group:
            # Start-up errors raised inside nurseries arrive wrapped; callers get them bare.
            sole = _sole_error(group)
            if isinstance(sole, (AgentError, ConfigError, CredentialsError)):
                raise sole from None
            if isinstance(sole, StorageError):
                raise AgentError(f"cannot open the object disks: {sole}") from None
            if isinstance(sole, ClusterError):
                raise AgentError(f"cluster: {sole}") from None
            raise
        except ClusterError as error:
            raise AgentError(f"cluster: {error}") from None


async def _run(
    settings: Settings,
    ready: Callable[[NodeServices], object] | None,
    stop: trio.Event,
    signals: AsyncIterator[int],
    env: Mapping[str, str],
    wiring: Wiring,
) -> None:
    data_dir = settings.data_dir
    await trio.to_thread.run_sync(ensure_data_dir, data_dir)
    lock_fd = await trio.to_thread.run_sync(_lock_data_dir, data_dir)
    try:
        credentials = await trio.to_thread.run_sync(load_or_create, data_dir, env)
        async with (
            wiring.open_journal(data_dir / JOURNAL_FILE) as journal,
            open_blob_store(settings.disk_paths, node_id=journal.node_id) as blobs,
        ):
            if wiring.referenced_blobs is not None:
                swept = await blobs.sweep(partial(wiring.referenced_blobs, journal))
                if swept:
                    _log.info("storage.swept", blobs=swept)
            cluster_context = (
                open_node_cluster(settings, journal, blobs) if wiring.cluster else nullcontext()
            )
            async with (
                cluster_context as cluster,
                _replicated(settings, journal, blobs, cluster, wiring) as replication,
            ):
                node = NodeServices(
                    settings,
                    journal if replication is None else replication.journal,
                    credentials,
                    blobs,
                    cluster=cluster,
                    replication=replication,
                    replicas=None if replication is None else replication.replicas,
                )
                app = Dispatcher(wiring.build_aws_app(node), create_admin_app(node))
                force = trio.CancelScope()
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(_on_signals, signals, stop, force)
                    with force:
                        await _serve(app, node, ready, stop)
                    nursery.cancel_scope.cancel()
            _log.info(
                "agent.stopped", node=node.node_id, uptime_seconds=round(node.uptime_seconds(), 3)
            )
    finally:
        os.close(lock_fd)  # releases the flock; closing a local file descriptor does not block


@asynccontextmanager
async def _replicated(
    settings: Settings, journal: Any, blobs: Any, cluster: ClusterNode | None, wiring: Wiring
) -> AsyncIterator[Replication | None]:
    """The node's replication (none without a cluster)."""
    if cluster is None or wiring.blob_catalog is None:
        yield None
        return
    async with open_replication(
        settings, journal, blobs, cluster, wiring.blob_catalog
    ) as replication:
        yield replication


@asynccontextmanager
async def open_node_cluster(
    settings: Settings, journal: Any, blobs: Any
) -> AsyncIterator[ClusterNode]:
    """The cluster node of this agent, configured from ``settings`` (see ``cluster.node``)."""
    period = settings.cluster_protocol_period
    async with open_cluster_node(
        settings.data_dir / CLUSTER_DIR,
        node_id=journal.node_id,
        host=settings.host,
        cluster_port=settings.cluster_port,
        api_port=settings.port,
        meta_provider=meta_provider(settings, journal, blobs),
        seeds=[parse_seed(peer) for peer in settings.peers],
        join_token=settings.join_token,
        mdns=settings.mdns_enabled,
        swim_config=SwimConfig(protocol_period=period, probe_timeout=0.8 * period),
        meta_interval=max(1.0, 5 * period),
    ) as cluster:
        yield cluster


async def _serve(
    app: ASGIApp,
    node: NodeServices,
    ready: Callable[[NodeServices], object] | None,
    stop: trio.Event,
) -> None:
    settings = node.settings
    async with trio.open_nursery() as server:
        try:
            await server.start(partial(serve, app, settings, shutdown_trigger=stop.wait))
        except ListenError as error:
            raise AgentError(str(error)) from None
        _log.info(
            "agent.started",
            node=node.node_id,
            endpoint=settings.endpoint_url,
            region=settings.region,
            data_dir=settings.data_dir,
            version=__version__,
            pid=os.getpid(),
        )
        if ready is not None:
            ready(node)


async def _on_signals(
    signals: AsyncIterator[int], stop: trio.Event, force: trio.CancelScope
) -> None:
    async for signum in signals:
        name = signal.Signals(signum).name
        if not stop.is_set():
            _log.info("agent.stopping", signal=name)
            stop.set()
        else:
            _log.warning("agent.stop_forced", signal=name)
            force.cancel()


def _lock_data_dir(data_dir: Path) -> int:
    """Take the data dir's exclusive lock and write our pid into it; returns the held fd."""
    path = data_dir / LOCK_FILE
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    except OSError as error:
        raise AgentError(f"cannot open lock file {path}: {error.strerror}") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as error:
        holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "unknown"
        os.close(fd)
        if error.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
            raise DataDirInUse(
                f"another zeronode agent is using {data_dir} (pid {holder})"
            ) from None
        raise AgentError(f"cannot lock {path}: {error.strerror}") from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    return fd


def _sole_error(group: BaseExceptionGroup[Any]) -> BaseException | None:
    """The one non-group exception inside ``group`` (nested groups flattened), if just one."""
    leaves: list[BaseException] = []
    pending: list[BaseException] = [group]
    while pending:
        error = pending.pop()
        if isinstance(error, BaseExceptionGroup):
            pending.extend(error.exceptions)
        else:
            leaves.append(error)
    return leaves[0] if len(leaves) == 1 else None
