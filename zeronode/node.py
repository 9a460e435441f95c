"""What a running node hands to the code that serves it: :class:`NodeServices`.

The agent builds one ``NodeServices`` after it has taken the data-dir lock, loaded the
credentials and opened the journal, and passes it to ``build_aws_app`` (the AWS wire layer)
and to the admin app. It lives in its own module so that those layers can import the type
without importing the agent.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from zeronode.config import Settings
from zeronode.credentials import Credentials

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class JournalView(Protocol):
    """The part of the journal the agent and the admin surface read."""

    @property
    def node_id(self) -> str: ...

    def position(self) -> dict[str, int]:
        """The version vector: ``{origin node id: highest contiguous seq held}``."""
        ...


@dataclass(frozen=True)
class NodeServices:
    """Everything a node's request handlers may use, fixed for the life of the agent.

    ``started_at`` is wall-clock (Unix seconds, for display); ``uptime_seconds()`` uses the
    monotonic clock, so a clock step does not make the node look younger or older.
    """

    settings: Settings
    journal: Any  # a zeronode.journal Journal; JournalView is the part the agent relies on
    credentials: Credentials
    blobs: Any = None  # the node's zeronode.storage.BlobStore (object bytes)
    cluster: Any = None  # the node's cluster.node.ClusterNode; None when it runs none
    replication: Any = None  # the agent's Replication parts; None without a cluster
    replicas: Any = None  # zeronode.storage.replicas.BlobReplicas; None without a cluster
    started_at: float = field(default_factory=time.time)
    started_monotonic: float = field(default_factory=time.monotonic, repr=False)

    @property
    def node_id(self) -> str:
        return str(self.journal.node_id)

    def uptime_seconds(self) -> float:
        return time.monotonic() - self.started_monotonic

    async def barrier(self) -> None:
        """Wait until this node holds every write a majority had acknowledged (a no-op
        without replication); a request runs it once, before its handler."""
        if self.replication is not None:
            await self.replication.barrier()
