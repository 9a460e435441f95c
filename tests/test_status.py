"""The status document's verdict and table, and the admin pages that serve them."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path
from typing import Any

from tests.agent_process import FakeJournal
from zeronode.config import Settings
from zeronode.credentials import generate
from zeronode.http.admin import create_admin_app
from zeronode.node import NodeServices
from zeronode.status import render_table, replication_line, verdict


def member(node_id: str, state: str, *, me: bool = False, voter: bool = True) -> dict[str, Any]:
    return {
        "node_id": node_id * 32, "address": "10.0.0.1:9701", "api": "10.0.0.1:9700",
        "state": state, "self": me, "voter": voter, "incarnation": 1, "last_heard": 0.25,
        "journal_position": 7, "journal_lag": 0, "disk_used": 3 << 30, "disk_free": 5 << 30,
        "load": 0.1, "version": "0.1.0", "clock_offset": -0.002, "rtt": 0.001,
    }  # fmt: skip


def test_every_voter_alive_is_healthy_and_non_voters_do_not_count() -> None:
    members = [member("a", "alive", me=True), member("b", "alive"), member("c", "dead",
                                                                            voter=False)]
    assert verdict(members) == {
        "healthy": True, "text": "healthy: 2 of 2 members alive", "alive": 2, "voters": 2
    }  # fmt: skip


def test_any_voter_not_alive_is_degraded_and_named() -> None:
    members = [member("a", "alive", me=True), member("b", "suspect"), member("c", "unknown")]
    result = verdict(members)
    assert not result["healthy"]
    assert result["text"] == (
        f"degraded: 1 of 3 members alive ({'b' * 12} suspect, {'c' * 12} unknown)"
    )


def test_removed_members_are_not_voters_and_a_joining_node_is_degraded() -> None:
    assert verdict([member("a", "alive", me=True), member("b", "removed")])["healthy"]
    assert not verdict([member("a", "joining", me=True, voter=False)])["healthy"]


def test_the_table_shows_short_ids_sizes_offsets_and_the_verdict() -> None:
    members = [member("a", "alive", me=True), member("b", "dead")]
    text = render_table({"cluster_id": "c1", "members": members, "verdict": verdict(members)})
    lines = text.splitlines()
    assert lines[0].split() == ["NODE", "ADDRESS", "STATE", "HEARD", "JOURNAL", "LAG", "DISK",
                                "USED", "DISK", "FREE", "VERSION", "CLOCK"]
    assert lines[1].split()[:4] == ["a" * 12 + "*", "10.0.0.1:9701", "alive", "self"]
    assert "3.0GiB" in lines[2] and "5.0GiB" in lines[2] and "-0.002s" in lines[2]
    assert lines[-1] == f"degraded: 1 of 2 members alive ({'b' * 12} dead)"


def test_the_table_shows_the_write_mode_copies_and_alarms() -> None:
    members = [member("a", "alive", me=True)]
    section = {"ack": "majority", "writable": True, "replicas": 2, "under_replicated": 3,
               "pending": 1, "conflicts": 0, "divergences": 0, "quarantined": 0}
    document = {"cluster_id": "c1", "members": members, "verdict": verdict(members),
                "replication": section}
    assert render_table(document).splitlines()[-2] == (
        "writes: ack majority (writable); object copies: 2 (under-replicated 3, pending 1)"
    )
    section |= {"writable": False, "conflicts": 2}
    assert replication_line(section).startswith("writes: ack majority (READ-ONLY")
    assert replication_line(section).endswith("; ALARMS: conflicts 2")


async def test_admin_serves_status_and_the_dashboard_without_a_cluster(tmp_path: Path) -> None:
    node = NodeServices(Settings(data_dir=tmp_path), FakeJournal("node-test"), generate())
    app = create_admin_app(node)
    async with app.test_app() as test_app:
        client = test_app.test_client()
        response = await client.get("/_zeronode/status")
        body = await response.get_json()
        page = await client.get("/_zeronode/")
        html = await page.get_data(as_text=True)
    assert response.status_code == 200 and body["members"] == []
    assert body["verdict"]["healthy"] and body["verdict"]["text"].startswith("standalone")
    assert page.status_code == 200 and page.content_type.startswith("text/html")
    assert "/_zeronode/status" in html and "<script>" in html
    assert 'src="' not in html and 'href="' not in html  # no external assets


def _journal_document(agent: Any) -> dict[str, Any]:
    with urllib.request.urlopen(f"{agent.endpoint}/_zeronode/journal", timeout=5) as response:
        return json.loads(response.read())


def test_journal_endpoint_shows_position_and_a_state_hash_that_tracks_writes(agent: Any) -> None:
    before = _journal_document(agent)
    assert before["node_id"] == agent.health()["node_id"]
    assert len(before["state_hash"]) == 64 and before == _journal_document(agent)
    agent.boto3_client("s3").create_bucket(Bucket="journal-endpoint")
    after = _journal_document(agent)
    assert after["position"][after["node_id"]] > before["position"].get(before["node_id"], 0)
    assert after["state_hash"] != before["state_hash"]
