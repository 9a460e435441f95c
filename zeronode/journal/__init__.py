"""Event sourcing for one node: an append-only log, a hybrid logical clock, projections.

Theory of operation
-------------------
Every control-plane mutation a node accepts becomes an *event*: ``(origin, seq, hlc, entity,
kind, payload)``. The event is appended to the node's SQLite file and folded into the
projections (the tables services read) in the same transaction, with the version vector, so
the log, the tables and the vector can never disagree after a crash.

Why LWW on resulting state. The payload is the entity's whole state after the mutation, not
the operation that produced it. Operations do not commute ("add tag", "remove tag" applied in
two orders give two answers); whole states do under one rule: for each entity, the event with
the greatest ``(hlc, origin)`` wins. That makes the fold a pure function of the *set* of events
held, so any two nodes holding the same events show the same state, whatever order the events
arrived in, however often. The mutation itself reads the projections (on the writer thread,
inside the transaction) to decide and to validate; only its outcome is replicated.

Why contiguous seq. Each origin numbers its events 1, 2, 3... and a node takes another origin's
event only if it is exactly the next one. What a node holds is then described completely by a
version vector ``{origin: highest seq}``: replication is "send me what lies above this vector",
and there is no gap, hole or partial-event bookkeeping, the bug class that dominates systems
that allow it. An ``(origin, seq)`` seen twice with different contents is an alarm, and node
ids are random per database so a wiped disk can never reuse old numbers.

Why a hybrid logical clock. LWW by raw wall time breaks under clock skew and backward steps.
The HLC stays within milliseconds of wall time, never goes backward (it is persisted), and
refuses to be dragged into the future by a remote clock that runs ahead.

Why group commit. A durable commit costs one fsync (about 5 ms here, so 200/s). One writer task
drains every mutation queued while the previous fsync ran into the next transaction, each under
its own savepoint: a mutation that raises is rolled back alone, the others commit, and every
caller is answered only after the fsync that made its events durable.

Kinds this node does not know (a newer node's schema version during a rolling upgrade) are
stored and quarantined, never a crash, and folded when a later open brings their projection.

Why compaction and snapshots. The log would grow forever; once every durable member holds an
event that a later write superseded, nobody needs it and it is dropped (``compaction.py``). A
node that fell behind what its peers still keep installs a peer's whole database instead
(``snapshot.py``) and follows the logs from there.
"""

from zeronode.journal.compaction import DEFAULT_TOMBSTONE_GRACE_MS, BehindFloor, CompactionReport
from zeronode.journal.event import Change, Event
from zeronode.journal.hlc import DEFAULT_MAX_OFFSET_MS, HybridLogicalClock
from zeronode.journal.journal import Journal, JournalStats, open_journal, system_wall_clock_ms
from zeronode.journal.projection import Projection, UnknownKindError, entity_fields
from zeronode.journal.snapshot import SnapshotInfo, SnapshotRejected
from zeronode.journal.store import IngestReport, JournalLockedError
from zeronode.journal.writer import CommitFailedError, JournalClosedError

__all__ = [
    "DEFAULT_MAX_OFFSET_MS",
    "DEFAULT_TOMBSTONE_GRACE_MS",
    "BehindFloor",
    "Change",
    "CommitFailedError",
    "CompactionReport",
    "Event",
    "HybridLogicalClock",
    "IngestReport",
    "Journal",
    "JournalClosedError",
    "JournalLockedError",
    "JournalStats",
    "Projection",
    "SnapshotInfo",
    "SnapshotRejected",
    "UnknownKindError",
    "entity_fields",
    "open_journal",
    "system_wall_clock_ms",
]
