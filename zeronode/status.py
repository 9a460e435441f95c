"""What ``zeronode status`` and ``GET /_zeronode/status`` show: every member and a verdict.

The cluster layer (``cluster.node``) knows members as SWIM sees them plus the metadata each
publishes; this module decides what that metadata is (:func:`meta_provider`: version, API
port, disk space, load, journal position), turns a member list into the status document
(:func:`status_document`), judges it (:func:`verdict`) and renders it as a table
(:func:`render_table`). The document is plain JSON, so the CLI, the dashboard page and
scripts read the same thing.

Journal position is the number of events a node holds (the sum of its version vector), and
lag is how many fewer it holds than the most advanced live member: small enough to gossip in
SWIM's metadata whatever the cluster's size, and exactly what an operator asks ("is this
node behind?"). The full version vectors are the replication layer's business.

The verdict is *healthy* when every voter (the durable members) is alive; anything else —
a voter suspect, dead, left, or not heard of since this node started — is *degraded*.
"""

from __future__ import annotations

import os
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from zeronode import __version__
from zeronode.config import Settings

STATUS_VERSION = 1


def meta_provider(
    settings: Settings, journal: Any, blobs: Any
) -> Callable[[], Awaitable[Mapping[str, Any]]]:
    """The metadata this node publishes to the cluster (kept small: SWIM caps it)."""

    async def provide() -> Mapping[str, Any]:
        position = journal.position()
        total = free = 0
        for disk in blobs.disks if blobs is not None else ():
            total += disk.total_bytes
            free += disk.free_bytes
        return {
            "v": __version__,
            "api": settings.port,
            "du": total - free,
            "df": free,
            "load": round(os.getloadavg()[0], 2),
            "pos": int(sum(position.values())),
        }

    return provide


def _api_address(cluster_address: str, api_port: Any) -> str | None:
    if not isinstance(api_port, int):
        return None
    host = cluster_address.rpartition(":")[0]
    return f"{host}:{api_port}" if host else None


def status_document(node: Any) -> dict[str, Any]:
    """The body of ``GET /_zeronode/status`` for a running agent (``node``: NodeServices)."""
    cluster = node.cluster
    if cluster is None:
        return {
            "status_version": STATUS_VERSION,
            "node_id": node.node_id,
            "cluster_id": None,
            "generated_at": time.time(),
            "members": [],
            "verdict": {"healthy": True, "text": "standalone: the cluster is disabled",
                        "alive": 1, "voters": 1},
        }
    views = cluster.members()
    positions = [v.meta.get("pos") for v in views if v.state == "alive"]
    best = max((p for p in positions if isinstance(p, int)), default=0)
    members = []
    for view in views:
        meta = view.meta
        position = meta.get("pos") if isinstance(meta.get("pos"), int) else None
        members.append({
            "node_id": view.node_id,
            "address": view.address,
            "api": _api_address(view.address, meta.get("api")),
            "state": view.state,
            "self": view.is_self,
            "voter": view.voter,
            "incarnation": view.incarnation,
            "last_heard": None if view.last_heard is None else round(view.last_heard, 3),
            "journal_position": position,
            "journal_lag": None if position is None else max(0, best - position),
            "disk_used": meta.get("du"),
            "disk_free": meta.get("df"),
            "load": meta.get("load"),
            "version": meta.get("v"),
            "clock_offset": 0.0 if view.is_self else (
                None if view.clock_offset is None else round(view.clock_offset, 4)),
            "rtt": None if view.rtt is None else round(view.rtt, 4),
        })
    return {
        "status_version": STATUS_VERSION,
        "node_id": node.node_id,
        "cluster_id": cluster.cluster_id,
        "generated_at": time.time(),
        "members": members,
        "verdict": verdict(members),
        "replication": replication_section(node),
        "loop_lag_max": round(cluster.loop_lag_max, 4),
    }


def replication_section(node: Any) -> dict[str, Any] | None:
    """How this node replicates: the acknowledgement mode, what it knows of its peers'
    version vectors, and the state of its object-byte copies (None when it runs none)."""
    return None if node.replication is None else node.replication.status()


def replication_line(section: Mapping[str, Any]) -> str:
    """One line for the table: the write mode, object copies, and any alarm raised."""
    writable = "writable" if section.get("writable") else "READ-ONLY: no majority reachable"
    line = (
        f"writes: ack {section.get('ack', '-')} ({writable}); object copies: "
        f"{section.get('replicas', '-')} (under-replicated {section.get('under_replicated', '-')}"
        f", pending {section.get('pending', '-')})"
    )
    alarms = [f"{name} {section[name]}" for name in ("conflicts", "divergences", "quarantined")
              if section.get(name)]
    return line + (f"; ALARMS: {', '.join(alarms)}" if alarms else "")


def verdict(members: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Healthy when every voter is alive (see the module docstring)."""
    voters = [m for m in members if m["voter"] and m["state"] != "removed"]
    if any(m["self"] and m["state"] == "joining" for m in members):
        return {"healthy": False, "text": "degraded: this node has not joined its cluster yet",
                "alive": 0, "voters": len(voters)}
    alive = [m for m in voters if m["state"] == "alive"]
    if len(alive) == len(voters):
        text = f"healthy: {len(alive)} of {len(voters)} members alive"
        return {"healthy": True, "text": text, "alive": len(alive), "voters": len(voters)}
    down = ", ".join(f"{m['node_id'][:12]} {m['state']}" for m in voters if m["state"] != "alive")
    text = f"degraded: {len(alive)} of {len(voters)} members alive ({down})"
    return {"healthy": False, "text": text, "alive": len(alive), "voters": len(voters)}


def _size(value: Any) -> str:
    if not isinstance(value, int):
        return "-"
    amount = float(value)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if amount < 1024 or unit == "TiB":
            return f"{amount:.0f}{unit}" if unit == "B" else f"{amount:.1f}{unit}"
        amount /= 1024
    return "-"


def _seconds(value: Any, *, signed: bool = False) -> str:
    if not isinstance(value, (int, float)):
        return "-"
    return f"{value:+.3f}s" if signed else f"{value:.1f}s"


def render_table(document: Mapping[str, Any]) -> str:
    """The text ``zeronode status`` prints: one row per member, then the verdict."""
    header = ("NODE", "ADDRESS", "STATE", "HEARD", "JOURNAL", "LAG", "DISK USED", "DISK FREE",
              "VERSION", "CLOCK")
    rows = [header]
    for m in document["members"]:
        marker = "*" if m["self"] else ("" if m["voter"] else "~")
        rows.append((
            m["node_id"][:12] + marker,
            m["address"] or "-",
            m["state"],
            "self" if m["self"] else _seconds(m["last_heard"]),
            "-" if m["journal_position"] is None else str(m["journal_position"]),
            "-" if m["journal_lag"] is None else str(m["journal_lag"]),
            _size(m["disk_used"]),
            _size(m["disk_free"]),
            m["version"] or "-",
            _seconds(m["clock_offset"], signed=True),
        ))
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip()
             for row in rows]
    cluster = document.get("cluster_id") or "-"
    lines.append("")
    lines.append(f"cluster {cluster}  (* this node, ~ not a voter)")
    replication = document.get("replication")
    if replication:
        lines.append(replication_line(replication))
    lines.append(document["verdict"]["text"])
    return "\n".join(lines) + "\n"
