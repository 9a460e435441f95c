"""The checksums S3 speaks, computed incrementally.

S3 names six algorithms: the five "flexible checksums" a client may send as an
``x-amz-checksum-<name>`` header or aws-chunked trailer (CRC32, CRC32C, CRC64NVME, SHA1,
SHA256), and MD5, which is what ``Content-MD5`` and single-part ETags are made of. On the
wire a checksum is the base64 of its big-endian digest bytes (a CRC32 is 4 bytes, a
CRC64NVME 8), which is what :meth:`Checksum.b64digest` returns — the same bytes botocore's
``httpchecksum`` module puts in requests.

Every hasher takes data piece by piece (``update``) so an 8 GiB object is checked in one
pass as it streams to disk. CRC32 comes from zlib; CRC32C and CRC64NVME from awscrt, AWS's
own C implementation, because pure Python could not keep up with a disk.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import zlib
from typing import Protocol

from awscrt import checksums as _crt

#: Algorithm names as S3 spells them (``x-amz-sdk-checksum-algorithm``, ``ChecksumAlgorithm``).
FLEXIBLE_ALGORITHMS: tuple[str, ...] = ("CRC32", "CRC32C", "CRC64NVME", "SHA1", "SHA256")
ALGORITHMS: tuple[str, ...] = (*FLEXIBLE_ALGORITHMS, "MD5")

#: Header (or trailer) name -> algorithm. Content-MD5 is not here: it is a header of its own
#: with its own error codes (InvalidDigest / BadDigest), never a trailer.
CHECKSUM_HEADERS: dict[str, str] = {f"x-amz-checksum-{a.lower()}": a for a in FLEXIBLE_ALGORITHMS}

_DIGEST_SIZES: dict[str, int] = {
    "CRC32": 4,
    "CRC32C": 4,
    "CRC64NVME": 8,
    "SHA1": 20,
    "SHA256": 32,
    "MD5": 16,
}


class Checksum(Protocol):
    algorithm: str

    def update(self, data: bytes) -> None: ...

    def digest(self) -> bytes: ...

    def b64digest(self) -> str: ...

    def hexdigest(self) -> str: ...


class _Base:
    algorithm: str

    def digest(self) -> bytes:  # pragma: no cover - overridden
        raise NotImplementedError

    def b64digest(self) -> str:
        return base64.b64encode(self.digest()).decode("ascii")

    def hexdigest(self) -> str:
        return self.digest().hex()


class _Crc32(_Base):
    algorithm = "CRC32"

    def __init__(self) -> None:
        self._crc = 0

    def update(self, data: bytes) -> None:
        self._crc = zlib.crc32(data, self._crc)

    def digest(self) -> bytes:
        return self._crc.to_bytes(4, "big")


class _Crc32c(_Base):
    algorithm = "CRC32C"

    def __init__(self) -> None:
        self._crc = 0

    def update(self, data: bytes) -> None:
        self._crc = _crt.crc32c(data, self._crc)

    def digest(self) -> bytes:
        return self._crc.to_bytes(4, "big")


class _Crc64Nvme(_Base):
    algorithm = "CRC64NVME"

    def __init__(self) -> None:
        self._crc = 0

    def update(self, data: bytes) -> None:
        self._crc = _crt.crc64nvme(data, self._crc)

    def digest(self) -> bytes:
        return self._crc.to_bytes(8, "big")


class _Hashlib(_Base):
    def __init__(self, algorithm: str, name: str) -> None:
        self.algorithm = algorithm
        self._hash = hashlib.new(name)

    def update(self, data: bytes) -> None:
        self._hash.update(data)

    def digest(self) -> bytes:
        return self._hash.digest()


def new_checksum(algorithm: str) -> Checksum:
    """A fresh hasher for ``algorithm`` (case-insensitive S3 name); ValueError if unknown."""
    name = algorithm.upper()
    if name == "CRC32":
        return _Crc32()
    if name == "CRC32C":
        return _Crc32c()
    if name == "CRC64NVME":
        return _Crc64Nvme()
    if name in ("SHA1", "SHA256", "MD5"):
        return _Hashlib(name, name.lower())
    raise ValueError(f"unknown checksum algorithm {algorithm!r}")


def algorithm_for_header(name: str) -> str | None:
    """``x-amz-checksum-crc32`` (any case) -> ``CRC32``; None if it names no checksum."""
    return CHECKSUM_HEADERS.get(name.strip().lower())


def header_for_algorithm(algorithm: str) -> str:
    """``CRC32`` -> ``x-amz-checksum-crc32``; ValueError for MD5 or an unknown name."""
    name = algorithm.upper()
    if name not in FLEXIBLE_ALGORITHMS:
        raise ValueError(f"{algorithm!r} has no x-amz-checksum header")
    return f"x-amz-checksum-{name.lower()}"


def decode_b64_digest(algorithm: str, value: str) -> bytes | None:
    """The digest bytes of a header value, or None if it is not valid base64 of the right size.

    S3 refuses such values up front (``InvalidRequest`` "Value for x-amz-checksum-crc32
    header is invalid."), before comparing anything, so callers need the distinction.
    """
    try:
        raw = base64.b64decode(value.strip(), validate=True)
    except (binascii.Error, ValueError):
        return None
    return raw if len(raw) == _DIGEST_SIZES[algorithm.upper()] else None


def checksum_of(algorithm: str, data: bytes) -> str:
    """The base64 checksum of ``data`` in one call (small values; tests; ETag inputs)."""
    c = new_checksum(algorithm)
    c.update(data)
    return c.b64digest()
