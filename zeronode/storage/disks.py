"""The node's disks: identity, layout, exclusive use and free space.

A disk is a directory (usually a mount point) the operator gives the node. Its identity is not
its path: the first time the store sees it, it writes ``zeronode-disk.id`` at the root with a
random id, and every :class:`~zeronode.storage.blobs.BlobRef` names that id. A disk that comes
back at another mount point after a reboot, or a reordering of ``data_dirs``, is therefore still
found. Layout under the root:

    zeronode-disk.id    {"format": 1, "disk": "<32 hex>", "node": "<node id that created it>"}
    blobs/<aa>/<blob>   finished blobs, fanned out on the first two hex digits of the blob id
    tmp/<blob>          uploads in progress; anything here at open is a crash leftover

The marker file is also ``flock``-ed for as long as a store has the disk open, so two agents
pointed at the same directory fail loudly instead of deleting each other's uploads in ``tmp/``.

Everything here blocks (file system calls): callers run it in a worker thread.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import secrets
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from zeronode.logs import get_logger

_log = get_logger(__name__)

MARKER_FILE = "zeronode-disk.id"
BLOBS_DIR = "blobs"
TMP_DIR = "tmp"
_MARKER_FORMAT = 1

#: ``(total_bytes, free_bytes)`` of the file system holding a path. Injectable so tests can
#: stage "disk B has more room" without filling a real disk.
SpaceFunction = Callable[[Path], tuple[int, int]]


class StorageError(Exception):
    """A disk cannot be used as configured (in use elsewhere, duplicated, unreadable marker).

    Raised while opening the store, never per request: these are operator mistakes, and the
    agent should refuse to start rather than serve with a disk missing.
    """


def statvfs_space(path: Path) -> tuple[int, int]:
    """Total and free bytes as an unprivileged process sees them (``f_bavail``, not root's)."""
    st = os.statvfs(path)
    return st.f_blocks * st.f_frsize, st.f_bavail * st.f_frsize


@dataclass(frozen=True)
class DiskInfo:
    """One disk as ``zeronode status`` shows it."""

    id: str
    path: Path
    total_bytes: int
    free_bytes: int


@dataclass
class Disk:
    """An opened disk: its id, where it is mounted now, and the held lock on its marker."""

    id: str
    path: Path
    lock_fd: int

    @property
    def blobs(self) -> Path:
        return self.path / BLOBS_DIR

    @property
    def tmp(self) -> Path:
        return self.path / TMP_DIR

    def blob_path(self, blob: str) -> Path:
        return self.path / BLOBS_DIR / blob[:2] / blob

    def close(self) -> None:
        os.close(self.lock_fd)  # releases the flock


def fsync_dir(path: Path) -> None:
    """Make a directory's entries (a rename, a new file) survive a power cut."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def open_disk(path: Path, node_id: str) -> Disk:
    """Prepare ``path`` for use (marker, lock, directories) and clear its ``tmp/``.

    Idempotent apart from the cleanup: opening an already prepared disk keeps its id.
    """
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    marker = path / MARKER_FILE
    if not marker.exists():
        _create_marker(path, node_id)
    lock_fd = os.open(marker, os.O_RDONLY | os.O_CLOEXEC)
    try:
        try:
            fcntl.flock(lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as error:
            if error.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
                raise StorageError(
                    f"disk {path} is in use by another zeronode process"
                ) from None
            raise
        disk_id, created_by = _read_marker(marker)
        if created_by != node_id:
            # Legitimate (a disk moved from a retired node) but worth an operator's glance:
            # the blobs on it are only reachable through refs some journal still holds.
            _log.warning(
                "storage.disk_foreign",
                disk=disk_id,
                path=path,
                created_by=created_by,
                node=node_id,
            )
        _prepare_layout(path)
        removed = _clear_tmp(path / TMP_DIR)
        _log.info(
            "storage.disk_opened",
            disk=disk_id,
            path=path,
            orphaned_temp_removed=removed,
        )
        return Disk(disk_id, path, lock_fd)
    except BaseException:
        os.close(lock_fd)
        raise


def _create_marker(path: Path, node_id: str) -> None:
    """Write the marker atomically: a half-written id would orphan every blob on the disk."""
    body = json.dumps(
        {"format": _MARKER_FORMAT, "disk": secrets.token_hex(16), "node": node_id}
    )
    tmp = path / f".{MARKER_FILE}.{secrets.token_hex(4)}"
    with open(tmp, "w", encoding="ascii") as f:
        f.write(body + "\n")
        f.flush()
        os.fsync(f.fileno())
    try:
        os.link(
            tmp, path / MARKER_FILE
        )  # fails if another process created it meanwhile
    except FileExistsError:
        pass
    finally:
        os.unlink(tmp)
    fsync_dir(path)


def _read_marker(marker: Path) -> tuple[str, str]:
    try:
        data = json.loads(marker.read_text(encoding="ascii"))
        disk_id, node = data["disk"], data["node"]
        int(disk_id, 16)
    except (ValueError, KeyError, TypeError, UnicodeDecodeError) as error:
        raise StorageError(f"unreadable disk marker {marker}: {error}") from None
    return str(disk_id), str(node)


def _prepare_layout(path: Path) -> None:
    """Create ``tmp/`` and all 256 fan-out directories up front.

    Doing it once here means a write never creates a directory, so it only has to fsync the
    one directory it renames into.
    """
    blobs = path / BLOBS_DIR
    (path / TMP_DIR).mkdir(exist_ok=True)
    blobs.mkdir(exist_ok=True)
    created = False
    for i in range(256):
        sub = blobs / f"{i:02x}"
        if not sub.is_dir():
            sub.mkdir(exist_ok=True)
            created = True
    if created:
        fsync_dir(blobs)
        fsync_dir(path)


def _clear_tmp(tmp: Path) -> int:
    """Remove everything in ``tmp/``: with the disk locked, nothing there is in progress."""
    removed = 0
    with os.scandir(tmp) as entries:
        for entry in entries:
            if entry.is_dir(follow_symlinks=False):
                shutil.rmtree(entry.path, ignore_errors=True)
            else:
                try:
                    os.unlink(entry.path)
                except FileNotFoundError:
                    continue
            removed += 1
    return removed
