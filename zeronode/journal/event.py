"""The two values that cross the journal's seams: a ``Change`` in, an ``Event`` stored and sent.

A service's mutation returns ``Change``s (an entity and its whole resulting state); the writer
turns each into an ``Event`` by stamping it with the node's origin, next sequence number and a
hybrid-logical-clock timestamp. Events are immutable facts: what is stored is exactly what is
replicated, and an event's ``content_hash`` identifies it across nodes.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Any

import msgpack

from zeronode.journal.hlc import MAX_HLC

NODE_ID_PATTERN = re.compile(r"[0-9a-f]{32}")
# An event is atomic and small; big things (function code) travel as content-addressed blobs.
MAX_PAYLOAD_BYTES = 1 << 20


@dataclass(frozen=True)
class Change:
    """What a mutation produces: ``entity``'s whole new state, or ``None`` to delete it.

    ``entity`` is the last-writer-wins register (``s3/bucket/logs``); ``kind`` names the
    projection that shows it (``s3.bucket``; a schema version may be part of the name,
    ``s3.bucket@2``). ``state`` must be msgpack-serialisable.
    """

    entity: str
    kind: str
    state: dict[str, Any] | None


@dataclass(frozen=True)
class Event:
    """One stored mutation of one entity: the unit of replication.

    ``(origin, seq)`` names it (seq counts 1, 2, 3... per origin); ``hlc`` orders it against
    other writes of the same entity; ``payload`` is msgpack of the resulting state (nil for a
    tombstone).
    """

    origin: str
    seq: int
    hlc: int
    entity: str
    kind: str
    payload: bytes

    @property
    def content_hash(self) -> bytes:
        """128-bit BLAKE2b over every field: equal for the same event on every node."""
        fields = [self.origin, self.seq, self.hlc, self.entity, self.kind, self.payload]
        return hashlib.blake2b(msgpack.packb(fields), digest_size=16).digest()

    @property
    def tombstone(self) -> bool:
        return self.payload == TOMBSTONE_PAYLOAD


TOMBSTONE_PAYLOAD = msgpack.packb(None)


def encode_state(state: dict[str, Any] | None) -> bytes:
    """msgpack of a state; raises TypeError for anything but a dict or None."""
    if state is not None and not isinstance(state, dict):
        raise TypeError(f"a Change's state is a dict or None, not {type(state).__name__}")
    payload = msgpack.packb(state)
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise ValueError(f"state of {len(payload)} bytes exceeds {MAX_PAYLOAD_BYTES}")
    return payload


def decode_state(payload: bytes) -> dict[str, Any] | None:
    """The state an event carries; raises ValueError if the payload is not a dict or nil."""
    state = msgpack.unpackb(payload, strict_map_key=False)
    if state is not None and not isinstance(state, dict):
        raise ValueError(f"event payload decodes to {type(state).__name__}, not a map or nil")
    return state


def malformation(event: object) -> str | None:
    """Why a received event cannot even be stored, or None if its envelope is sound.

    Only the envelope is checked here: an unknown kind or an undecodable payload is still a
    valid event of its origin's log (it is stored and quarantined), while an envelope that
    fails these checks cannot be keyed or ordered at all.
    """
    if not isinstance(event, Event):
        return f"not an Event: {type(event).__name__}"
    if not isinstance(event.origin, str) or not NODE_ID_PATTERN.fullmatch(event.origin):
        return "origin is not a 128-bit lowercase hex node id"
    for name in ("seq", "hlc"):
        value = getattr(event, name)
        if not isinstance(value, int) or isinstance(value, bool):
            return f"{name} is not an integer"
    if not 1 <= event.seq <= MAX_HLC:
        return "seq out of range"
    if not 1 <= event.hlc <= MAX_HLC:
        return "hlc out of range"
    if not isinstance(event.entity, str) or not event.entity:
        return "entity is not a non-empty string"
    if not isinstance(event.kind, str) or not event.kind:
        return "kind is not a non-empty string"
    if not isinstance(event.payload, bytes) or len(event.payload) > MAX_PAYLOAD_BYTES:
        return "payload is not bytes of acceptable size"
    return None
