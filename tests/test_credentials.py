"""The node's root key pair: created once with mode 0600, reused, overridable from the env."""

from __future__ import annotations

import logging
import os
import re
import stat
import threading
from pathlib import Path

import pytest

from zeronode.credentials import (
    CREDENTIALS_FILE,
    Credentials,
    CredentialsError,
    load_or_create,
    read,
)


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_first_use_creates_aws_shaped_keys_in_a_private_file(tmp_path: Path) -> None:
    credentials = load_or_create(tmp_path, {})
    assert re.fullmatch(r"AKIA[A-Z0-9]{16}", credentials.access_key_id)
    assert len(credentials.secret_access_key) == 40
    path = tmp_path / CREDENTIALS_FILE
    assert credentials.path == path
    assert mode_of(path) == 0o600
    assert credentials.secret_access_key in path.read_text()


def test_file_is_private_whatever_the_umask(tmp_path: Path) -> None:
    previous = os.umask(0)
    try:
        load_or_create(tmp_path, {})
    finally:
        os.umask(previous)
    assert mode_of(tmp_path / CREDENTIALS_FILE) == 0o600


def test_keys_are_reused_after_creation(tmp_path: Path) -> None:
    first = load_or_create(tmp_path, {})
    again = load_or_create(tmp_path, {})
    assert again == first


def test_two_nodes_get_different_keys(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    assert load_or_create(tmp_path / "a", {}) != load_or_create(tmp_path / "b", {})


def test_concurrent_first_uses_agree_on_one_key_pair(tmp_path: Path) -> None:
    results: list[Credentials] = []
    barrier = threading.Barrier(8)

    def create() -> None:
        barrier.wait()
        results.append(load_or_create(tmp_path, {}))

    threads = [threading.Thread(target=create) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 8 and len(set(results)) == 1
    assert results[0] == read(tmp_path / CREDENTIALS_FILE)
    assert sorted(p.name for p in tmp_path.iterdir()) == [CREDENTIALS_FILE]  # no temp files left


def test_the_file_is_an_aws_shared_credentials_file(tmp_path: Path) -> None:
    import botocore.session

    credentials = load_or_create(tmp_path, {})
    session = botocore.session.Session()
    session.set_config_variable("credentials_file", str(tmp_path / CREDENTIALS_FILE))
    session.set_config_variable("config_file", str(tmp_path / "no-config"))
    found = session.get_credentials()
    assert (found.access_key, found.secret_key) == (
        credentials.access_key_id,
        credentials.secret_access_key,
    )


def test_environment_sets_the_keys_explicitly_and_no_file_is_written(tmp_path: Path) -> None:
    env = {
        "ZERONODE_ACCESS_KEY_ID": "AKIAEXAMPLE0000001",
        "ZERONODE_SECRET_ACCESS_KEY": "s3cr3t/+x",
    }
    credentials = load_or_create(tmp_path, env)
    assert (credentials.access_key_id, credentials.secret_access_key) == (
        "AKIAEXAMPLE0000001",
        "s3cr3t/+x",
    )
    assert credentials.path is None
    assert not (tmp_path / CREDENTIALS_FILE).exists()


def test_environment_wins_over_an_existing_file(tmp_path: Path) -> None:
    load_or_create(tmp_path, {})
    env = {"ZERONODE_ACCESS_KEY_ID": "AKIAEXAMPLE0000001", "ZERONODE_SECRET_ACCESS_KEY": "secret"}
    assert load_or_create(tmp_path, env).access_key_id == "AKIAEXAMPLE0000001"


@pytest.mark.parametrize(
    "env,missing",
    [
        ({"ZERONODE_ACCESS_KEY_ID": "AKIAEXAMPLE0000001"}, "ZERONODE_SECRET_ACCESS_KEY"),
        ({"ZERONODE_SECRET_ACCESS_KEY": "secret"}, "ZERONODE_ACCESS_KEY_ID"),
    ],
)
def test_environment_keys_come_in_pairs(tmp_path: Path, env: dict[str, str], missing: str) -> None:
    with pytest.raises(CredentialsError, match=f"must be set together \\({missing} is not set\\)"):
        load_or_create(tmp_path, env)
    assert not (tmp_path / CREDENTIALS_FILE).exists()


@pytest.mark.parametrize(
    "key_id,secret,message",
    [
        ("AK/ID", "secret", "access key id"),
        ("AKIA EXAMPLE", "secret", "access key id"),
        ("AKIAEXAMPLE", "has space", "secret access key"),
    ],
)
def test_malformed_environment_keys_are_rejected(
    tmp_path: Path, key_id: str, secret: str, message: str
) -> None:
    env = {"ZERONODE_ACCESS_KEY_ID": key_id, "ZERONODE_SECRET_ACCESS_KEY": secret}
    with pytest.raises(CredentialsError, match=message):
        load_or_create(tmp_path, env)


@pytest.mark.parametrize(
    "content", ["", "not ini at all", "[default]\naws_access_key_id = AKIAEXAMPLE0000001\n"]
)
def test_a_damaged_file_is_an_error_and_is_never_overwritten(tmp_path: Path, content: str) -> None:
    path = tmp_path / CREDENTIALS_FILE
    path.write_text(content)
    with pytest.raises(CredentialsError, match=str(path)):
        load_or_create(tmp_path, {})
    assert path.read_text() == content


def test_a_file_readable_by_others_still_works_but_is_reported(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    created = load_or_create(tmp_path, {})
    (tmp_path / CREDENTIALS_FILE).chmod(0o644)
    with caplog.at_level(logging.WARNING):
        assert load_or_create(tmp_path, {}) == created
    assert [r.getMessage() for r in caplog.records] == ["credentials.file_not_private"]


def test_secret_is_not_in_repr(tmp_path: Path) -> None:
    credentials = load_or_create(tmp_path, {})
    assert credentials.secret_access_key not in repr(credentials)
    assert credentials.access_key_id in repr(credentials)


def test_secret_for_looks_up_by_access_key_id() -> None:
    credentials = Credentials("AKIAEXAMPLE0000001", "secret")
    assert credentials.secret_for("AKIAEXAMPLE0000001") == "secret"
    assert credentials.secret_for("AKIAEXAMPLE0000002") is None
    assert credentials.secret_for("") is None
