"""The node's root access key: created once, kept in the data directory, reused after.

On first use :func:`load_or_create` writes ``<data_dir>/credentials``, an AWS shared-credentials
file (``[default]`` with ``aws_access_key_id`` and ``aws_secret_access_key``), so it can also be
used directly with ``AWS_SHARED_CREDENTIALS_FILE``. The file is born with mode 0600: it is
created under a temporary name with ``O_CREAT | O_EXCL`` and mode 0600, written, fsync'd, then
hard-linked to its final name, which fails if another process (a second ``zeronode env``, the
agent) got there first; the loser reads the winner's keys instead. A crash never leaves a
partial file under the final name, and two processes never end up with different keys.

``ZERONODE_ACCESS_KEY_ID`` and ``ZERONODE_SECRET_ACCESS_KEY`` set the key explicitly (both or
neither); then no file is read or written.

Keys look like AWS's: a 20-character ``AKIA...`` id (upper-case letters and digits) and a
40-character secret. All functions here block: call them from a worker thread inside trio.
"""

from __future__ import annotations

import configparser
import errno
import os
import re
import secrets
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from zeronode.logs import get_logger

CREDENTIALS_FILE = "credentials"
ACCESS_KEY_ENV = "ZERONODE_ACCESS_KEY_ID"
SECRET_KEY_ENV = "ZERONODE_SECRET_ACCESS_KEY"

_ID_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"  # AWS key ids use base32 characters
_SECRET_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
_VALID_ID = re.compile(r"[A-Za-z0-9]{3,128}")
_VALID_SECRET = re.compile(r"[\x21-\x7e]{1,128}")  # printable ASCII, no spaces

_log = get_logger(__name__)


class CredentialsError(Exception):
    """The key pair cannot be loaded or created. The message is meant for the operator."""


class SecretLookup(Protocol):
    """What the SigV4 verifier needs: the secret for an access key id, or None if unknown."""

    def secret_for(self, access_key_id: str) -> str | None: ...


@dataclass(frozen=True)
class Credentials:
    """The node's root key pair. ``path`` is the file it lives in (None when from the env).

    The secret never appears in ``repr`` (and so never in a log line or a traceback).
    """

    access_key_id: str
    secret_access_key: str = field(repr=False)
    path: Path | None = None

    def secret_for(self, access_key_id: str) -> str | None:
        """The secret for ``access_key_id`` if it is this key pair's id, else None."""
        if secrets.compare_digest(access_key_id.encode(), self.access_key_id.encode()):
            return self.secret_access_key
        return None


def generate() -> Credentials:
    """A fresh random key pair shaped like AWS's (``AKIA`` + 16, and 40 characters)."""
    key_id = "AKIA" + "".join(secrets.choice(_ID_ALPHABET) for _ in range(16))
    secret = "".join(secrets.choice(_SECRET_ALPHABET) for _ in range(40))
    return Credentials(key_id, secret)


def load_or_create(data_dir: Path, env: Mapping[str, str]) -> Credentials:
    """The node's key pair: from the environment, else the data dir's file, else a new one.

    The data directory must exist. Raises :class:`CredentialsError` for half-set environment
    variables, malformed values, or a file that exists but cannot be read or parsed (it is
    never overwritten: it may hold keys that clients are already configured with).
    """
    from_env = _from_env(env)
    if from_env is not None:
        return from_env
    path = data_dir / CREDENTIALS_FILE
    if not path.exists():
        _create(path, generate())
    return read(path)


def read(path: Path) -> Credentials:
    """Read a credentials file written by :func:`load_or_create`."""
    parser = configparser.ConfigParser(interpolation=None)
    try:
        with path.open(encoding="utf-8") as file:
            mode = os.fstat(file.fileno()).st_mode
            parser.read_file(file)
    except OSError as error:
        raise CredentialsError(f"cannot read credentials file {path}: {error.strerror}") from None
    except configparser.Error as error:
        raise CredentialsError(f"credentials file {path} is malformed: {error}") from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        _log.warning(
            "credentials.file_not_private",
            path=path,
            mode=f"{stat.S_IMODE(mode):o}",
            fix="chmod 600",
        )
    section = parser["default"] if parser.has_section("default") else None
    key_id = section.get("aws_access_key_id") if section else None
    secret = section.get("aws_secret_access_key") if section else None
    if not key_id or not secret:
        raise CredentialsError(
            f"credentials file {path} lacks [default] aws_access_key_id / aws_secret_access_key"
        )
    return _validated(key_id.strip(), secret.strip(), str(path), path)


def _from_env(env: Mapping[str, str]) -> Credentials | None:
    key_id = env.get(ACCESS_KEY_ENV, "")
    secret = env.get(SECRET_KEY_ENV, "")
    if not key_id and not secret:
        return None
    if not key_id or not secret:
        missing = ACCESS_KEY_ENV if not key_id else SECRET_KEY_ENV
        raise CredentialsError(
            f"{ACCESS_KEY_ENV} and {SECRET_KEY_ENV} must be set together ({missing} is not set)"
        )
    return _validated(key_id, secret, "the environment", None)


def _validated(key_id: str, secret: str, source: str, path: Path | None) -> Credentials:
    if not _VALID_ID.fullmatch(key_id):
        raise CredentialsError(f"access key id from {source} must be 3-128 letters and digits")
    if not _VALID_SECRET.fullmatch(secret):
        raise CredentialsError(
            f"secret access key from {source} must be 1-128 printable characters without spaces"
        )
    return Credentials(key_id, secret, path)


def _create(path: Path, credentials: Credentials) -> None:
    """Write ``credentials`` to ``path`` unless it exists; never leaves a partial file there."""
    content = (
        "# zeronode root access key. Keep this file private (mode 0600).\n"
        "[default]\n"
        f"aws_access_key_id = {credentials.access_key_id}\n"
        f"aws_secret_access_key = {credentials.secret_access_key}\n"
    ).encode()
    temp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    try:
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        try:
            os.write(fd, content)
            os.fsync(fd)
        finally:
            os.close(fd)
        _publish(temp, path)
        _fsync_dir(path.parent)
    except OSError as error:
        raise CredentialsError(f"cannot create credentials file {path}: {error.strerror}") from None
    finally:
        temp.unlink(missing_ok=True)


def _publish(temp: Path, path: Path) -> None:
    """Give ``temp`` its final name unless that name exists (then the other writer won)."""
    try:
        os.link(temp, path)
    except FileExistsError:
        pass
    except OSError as error:
        if error.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP):
            raise
        # A filesystem without hard links (vfat on a removable disk): rename, which can only
        # lose a race between two first starts in the same instant.
        if not path.exists():
            os.rename(temp, path)


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
