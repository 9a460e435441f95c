"""Three real agents on 127.0.0.1 serving S3 as one: read-after-write on every node, a node
that was down catching up to the identical state, a minority that refuses writes, and object
bytes read from any node, copied to a second one, and still read once the writer is dead.

Every agent is given the same root key (``ZERONODE_ACCESS_KEY_ID``/``..._SECRET_...``): each
node still keeps its own credentials file, and one client signs for all three.
"""

from __future__ import annotations

import hashlib
import json
import time
import urllib.request
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from tests.agent_process import AgentFactory, AgentProcess
from tests.cluster.agents import DEAD_BOUND, PERIOD, SLACK, start_cluster, states, wait_for

pytestmark = pytest.mark.slow

KEY_ID, SECRET = "AKIAZERONODETESTKEY1", "zeronode-test-secret-key-0123456789abcdef"
ENV = {"ZERONODE_ACCESS_KEY_ID": KEY_ID, "ZERONODE_SECRET_ACCESS_KEY": SECRET}


def s3(agent: AgentProcess) -> Any:
    return boto3.client(
        "s3", endpoint_url=agent.endpoint, region_name="us-east-1",
        aws_access_key_id=KEY_ID, aws_secret_access_key=SECRET,
        config=Config(retries={"max_attempts": 1}, s3={"addressing_style": "path"}),
    )  # fmt: skip


def journal(agent: AgentProcess) -> dict[str, Any]:
    with urllib.request.urlopen(f"{agent.endpoint}/_zeronode/journal", timeout=5) as response:
        return dict(json.load(response))


def replication(agent: AgentProcess) -> dict[str, Any]:
    with urllib.request.urlopen(f"{agent.endpoint}/_zeronode/status", timeout=5) as response:
        return dict(json.load(response)["replication"])


def converged(agents: list[AgentProcess]) -> bool:
    views = [journal(agent) for agent in agents]
    return all(
        (v["position"], v["state_hash"]) == (views[0]["position"], views[0]["state_hash"])
        for v in views
    )


@pytest.fixture
def trio_of_agents(agent_factory: AgentFactory) -> list[AgentProcess]:
    return start_cluster(agent_factory, 3, env=ENV)


def keys(client: Any, bucket: str) -> list[str]:
    listing = client.list_objects_v2(Bucket=bucket)
    return [item["Key"] for item in listing.get("Contents", [])]


def test_writes_on_one_node_are_read_on_the_others_as_soon_as_acknowledged(
    trio_of_agents: list[AgentProcess],
) -> None:
    a, b, c = (s3(agent) for agent in trio_of_agents)
    a.create_bucket(Bucket="shared")
    assert "shared" in [x["Name"] for x in b.list_buckets()["Buckets"]]
    assert "shared" in [x["Name"] for x in c.list_buckets()["Buckets"]]
    for i in range(10):
        writer, reader = (a, b, c)[i % 3], (a, b, c)[(i + 1) % 3]
        put = writer.put_object(Bucket="shared", Key=f"k{i}", Body=b"x" * i)
        head = reader.head_object(Bucket="shared", Key=f"k{i}")
        assert head["ETag"] == put["ETag"] and head["ContentLength"] == i
    assert keys(c, "shared") == sorted(f"k{i}" for i in range(10))
    b.delete_object(Bucket="shared", Key="k0")
    with pytest.raises(ClientError) as missing:
        c.head_object(Bucket="shared", Key="k0")
    assert missing.value.response["Error"]["Code"] == "404"
    assert replication(trio_of_agents[0])["ack"] == "majority"
    wait_for(lambda: converged(trio_of_agents), 10, "the three journals converge")


def test_a_node_that_was_down_catches_up_to_the_identical_state(
    trio_of_agents: list[AgentProcess],
) -> None:
    first, second, third = trio_of_agents
    a = s3(first)
    a.create_bucket(Bucket="catchup")
    third.kill()
    for i in range(30):
        a.put_object(Bucket="catchup", Key=f"while-down-{i}", Body=b"v")
    a.delete_object(Bucket="catchup", Key="while-down-0")
    third.start()
    wait_for(lambda: converged(trio_of_agents), 20, "the restarted node reaches the same state")
    assert len(keys(s3(third), "catchup")) == 29


def test_a_minority_answers_503_to_writes_and_still_serves_reads(
    trio_of_agents: list[AgentProcess],
) -> None:
    first, second, third = trio_of_agents
    a = s3(first)
    a.create_bucket(Bucket="minority")
    a.put_object(Bucket="minority", Key="before", Body=b"old")
    second.kill()
    third.kill()
    others = {second.node_id, third.node_id}
    wait_for(
        lambda: all(states(first)[n] == "dead" for n in others),
        DEAD_BOUND + SLACK, "the lone node sees the others dead",
    )
    started = time.monotonic()
    with pytest.raises(ClientError) as refused:
        a.put_object(Bucket="minority", Key="after", Body=b"new")
    assert refused.value.response["Error"]["Code"] == "ServiceUnavailable"
    assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 503
    assert time.monotonic() - started < 3  # refused before storing, not after a timeout
    assert keys(a, "minority") == ["before"]
    assert a.head_object(Bucket="minority", Key="before")["ContentLength"] == 3
    assert replication(first)["writable"] is False
    second.start()
    wait_for(lambda: replication(first)["writable"], DEAD_BOUND + SLACK, "a majority again")
    a.put_object(Bucket="minority", Key="after", Body=b"new")
    assert keys(s3(second), "minority") == ["after", "before"]


BIG = 256 * 1024 * 1024
GIB = 1024 * 1024 * 1024
CHUNK = 1 << 20


def big_file(path: Any, size: int = BIG) -> tuple[Any, str]:
    """``size`` varied bytes on disk, and their MD5."""
    digest = hashlib.md5()  # noqa: S324 - a checksum, not security
    with open(path, "wb") as file:
        for i in range(size // CHUNK):
            block = hashlib.sha256(str(i).encode()).digest() * (CHUNK // 32)
            digest.update(block)
            file.write(block)
    return path, digest.hexdigest()


def streamed_md5(client: Any, bucket: str, key: str) -> str:
    body = client.get_object(Bucket=bucket, Key=key)["Body"]
    digest = hashlib.md5()  # noqa: S324
    for block in body.iter_chunks(CHUNK):
        digest.update(block)
    return digest.hexdigest()


def peak_rss(agent: AgentProcess) -> int:
    assert agent.process is not None
    for line in open(f"/proc/{agent.process.pid}/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM")


def test_object_bytes_are_copied_and_read_from_any_holder_after_the_writer_dies(
    trio_of_agents: list[AgentProcess], tmp_path: Any
) -> None:
    first, second, third = trio_of_agents
    a, c = s3(first), s3(third)
    a.create_bucket(Bucket="bytes")
    path, md5 = big_file(tmp_path / "big")
    a.upload_file(str(path), "bytes", "big")  # multipart, as the CLI does: 32 segments
    path.unlink()
    assert streamed_md5(c, "bytes", "big") == md5  # streamed from the holders at once
    assert peak_rss(third) < 200 * 1024 * 1024  # flat: not the object's size
    wait_for(
        lambda: replication(first)["pending"] == 0 and replication(first)["copies_made"] >= 32,
        60, "every part copied to a second node",
    )
    first.kill()
    assert streamed_md5(c, "bytes", "big") == md5  # from the copies only
    ranged = c.get_object(Bucket="bytes", Key="big", Range="bytes=100000000-100000009")
    assert ranged["ContentLength"] == 10


def loop_lag_max(agent: AgentProcess) -> float:
    with urllib.request.urlopen(f"{agent.endpoint}/_zeronode/status", timeout=5) as response:
        return float(json.load(response)["loop_lag_max"])


def test_loop_lag_stays_under_the_probe_timeout_during_a_1_gib_upload(
    trio_of_agents: list[AgentProcess], tmp_path: Any
) -> None:
    first = trio_of_agents[0]
    a = s3(first)
    a.create_bucket(Bucket="lag")
    path, _ = big_file(tmp_path / "gib", GIB)
    with open(path, "rb") as body:
        a.put_object(Bucket="lag", Key="gib", Body=body)  # one streamed PUT
    path.unlink()
    wait_for(lambda: replication(first)["pending"] == 0, 60, "the copy is made")
    probe_timeout = 0.8 * PERIOD  # a node whose loop lags this long misses its pings
    lags = [loop_lag_max(agent) for agent in trio_of_agents]
    assert max(lags) < probe_timeout, lags


def test_a_get_whose_bytes_no_live_node_holds_is_a_503_before_the_body(
    agent_factory: AgentFactory,
) -> None:
    agents = start_cluster(agent_factory, 3, args=["--replicas", "1"], env=ENV)
    a, c = s3(agents[0]), s3(agents[2])
    a.create_bucket(Bucket="single")
    a.put_object(Bucket="single", Key="k", Body=b"only on a")
    assert c.get_object(Bucket="single", Key="k")["Body"].read() == b"only on a"
    agents[0].kill()
    with pytest.raises(ClientError) as unavailable:
        c.get_object(Bucket="single", Key="k")
    assert unavailable.value.response["Error"]["Code"] == "ServiceUnavailable"
    assert c.head_object(Bucket="single", Key="k")["ContentLength"] == 9  # metadata is there
