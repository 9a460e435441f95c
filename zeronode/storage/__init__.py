"""Node-local data planes: the blob store holding object bytes on the node's disks.

The S3 service keeps object metadata in the journal and the bytes here, linked by a
:class:`BlobRef`. See ``blobs.py`` for the write/crash/sweep rules.
"""

from zeronode.storage.blobs import (
    BlobRef,
    BlobStore,
    StoredBlob,
    WrittenBlob,
    is_blob_id,
    open_blob_store,
)
from zeronode.storage.disks import DiskInfo, SpaceFunction, StorageError, statvfs_space
from zeronode.storage.reader import BLOCK_SIZE, BlobMissing, BlobReader, BytesUnavailable

__all__ = [
    "BLOCK_SIZE",
    "BlobMissing",
    "BlobReader",
    "BlobRef",
    "BlobStore",
    "BytesUnavailable",
    "DiskInfo",
    "SpaceFunction",
    "StorageError",
    "StoredBlob",
    "WrittenBlob",
    "is_blob_id",
    "open_blob_store",
    "statvfs_space",
]
