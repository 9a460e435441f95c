"""Discovery: seed parsing, the TXT record, the candidate filter, re-offers, and mDNS on loopback.

Seeds and re-offers run on trio's autojump clock (``mdns=False`` touches no socket). The mDNS
tests use real multicast on ``lo`` (research A4: zeroconf bound to 127.0.0.1 works in the root
namespace) with a fresh random fingerprint per test, so concurrent runs ignore each other. They
wait with generous deadlines for events that must happen, never for a fixed time.
"""

from __future__ import annotations

import ipaddress
import itertools
import logging
import random
import secrets
from collections.abc import Callable, Iterator

import pytest
import trio
from hypothesis import given
from hypothesis import strategies as st

from cluster.discovery import (
    PROTOCOL_VERSION,
    Candidate,
    CandidateFilter,
    Discovery,
    DiscoveryError,
    InvalidRecord,
    Seed,
    SeedError,
    open_discovery,
    parse_record,
    parse_seed,
    record_properties,
)

FINGERPRINT = bytes(range(32))
NODE = "a" * 32
OTHER = "b" * 32


def node_id() -> str:
    return secrets.token_hex(16)


# -- seeds ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "seed"),
    [
        ("10.0.0.5:7946", Seed("10.0.0.5", 7946)),
        ("  node1.LAN:7946 ", Seed("node1.lan", 7946)),
        ("node1.lan.:1", Seed("node1.lan", 1)),
        ("localhost:65535", Seed("localhost", 65535)),
        ("[::1]:7946", Seed("::1", 7946)),
        ("[FD00:0:0::5]:7946", Seed("fd00::5", 7946)),
    ],
)
def test_parse_seed_accepts_host_port(text: str, seed: Seed) -> None:
    assert parse_seed(text) == seed


@pytest.mark.parametrize(
    ("text", "complaint"),
    [
        ("", "empty"),
        ("10.0.0.5", "has no port"),
        ("::1:7946", "in brackets"),
        ("fd00::5", "in brackets"),
        ("[::1]", "needs a port"),
        ("[::1]7946", "needs a port"),
        ("[zz::1]:7946", "not a valid IPv6"),
        ("[10.0.0.1]:7946", "not a valid IPv6"),
        ("10.0.0.300:7946", "not a valid IPv4"),
        ("10.0.0:7946", "not a valid IPv4"),
        ("host:", "is not a number"),
        ("host:http", "is not a number"),
        ("host:-1", "is not a number"),
        ("host:0", "outside 1-65535"),
        ("host:65536", "outside 1-65535"),
        (":7946", "has no host"),
        ("bad_host:7946", "neither an IP address nor a host name"),
        ("-lead.lan:7946", "neither an IP address nor a host name"),
        ("a..b:7946", "neither an IP address nor a host name"),
    ],
)
def test_parse_seed_says_what_is_wrong(text: str, complaint: str) -> None:
    with pytest.raises(SeedError, match=complaint):
        parse_seed(text)


def test_seed_error_is_a_value_error() -> None:
    """So ``argparse`` (``type=parse_seed``) reports it as a bad argument."""
    assert issubclass(SeedError, ValueError)


addresses = st.one_of(
    st.ip_addresses(v=4).map(str),
    st.ip_addresses(v=6).map(str),
)


@given(addresses, st.integers(1, 65535))
def test_seed_text_round_trips(host: str, port: int) -> None:
    seed = Seed(str(ipaddress.ip_address(host)), port)
    assert parse_seed(str(seed)) == seed


# -- the record -------------------------------------------------------------------------------


def txt(**overrides: str | None) -> dict[bytes, bytes | None]:
    """TXT properties as zeroconf decodes them (bytes keys and values)."""
    properties: dict[str, str | None] = {
        **record_properties(fingerprint=FINGERPRINT, node_id=NODE, api_port=4566),
        **overrides,
    }
    return {
        key.encode(): None if value is None else value.encode() for key, value in properties.items()
    }


def test_record_round_trips_into_one_candidate_per_address() -> None:
    found = parse_record(txt(), ["10.0.0.1", "10.0.0.2"], 7946)
    assert found == (
        Candidate(NODE, "10.0.0.1", 7946, 4566, FINGERPRINT, "mdns", PROTOCOL_VERSION),
        Candidate(NODE, "10.0.0.2", 7946, 4566, FINGERPRINT, "mdns", PROTOCOL_VERSION),
    )


def test_record_of_a_newer_version_is_still_a_candidate() -> None:
    """A rolling upgrade needs old and new nodes to find each other; the handshake decides."""
    (candidate,) = parse_record(txt(v="7"), ["10.0.0.1"], 7946)
    assert candidate.protocol_version == 7


@pytest.mark.parametrize(
    ("properties", "addresses", "port", "complaint"),
    [
        (txt(v=None), ["10.0.0.1"], 7946, "no 'v'"),
        (txt(v="one"), ["10.0.0.1"], 7946, "version"),
        (txt(fp="zz"), ["10.0.0.1"], 7946, "not hex"),
        (txt(fp="00" * 16), ["10.0.0.1"], 7946, "16 bytes"),
        (txt(id="A" * 32), ["10.0.0.1"], 7946, "node id"),
        (txt(id="../../etc"), ["10.0.0.1"], 7946, "node id"),
        (txt(api="0"), ["10.0.0.1"], 7946, "API port"),
        (txt(api="99999"), ["10.0.0.1"], 7946, "API port"),
        (txt(), ["10.0.0.1"], None, "SRV port"),
        (txt(), [], 7946, "no IPv4 address"),
    ],
)
def test_malformed_records_are_refused(
    properties: dict[bytes, bytes | None], addresses: list[str], port: int | None, complaint: str
) -> None:
    with pytest.raises(InvalidRecord, match=complaint):
        parse_record(properties, addresses, port)


def test_non_ascii_txt_is_refused() -> None:
    properties = txt()
    properties[b"id"] = "é".encode()
    with pytest.raises(InvalidRecord, match="not ASCII"):
        parse_record(properties, ["10.0.0.1"], 7946)


# -- the filter -------------------------------------------------------------------------------


def make_filter(window: float = 5.0) -> CandidateFilter:
    return CandidateFilter(
        fingerprint=FINGERPRINT, node_id=NODE, own_address=("10.0.0.1", 7946), dedupe_window=window
    )


def mdns_candidate(
    node: str = OTHER, fingerprint: bytes = FINGERPRINT, api: int = 4566
) -> Candidate:
    return Candidate(node, "10.0.0.2", 7946, api, fingerprint, "mdns", PROTOCOL_VERSION)


def test_filter_rejects_own_node_own_address_and_other_clusters() -> None:
    candidate_filter = make_filter()
    assert candidate_filter.rejects(mdns_candidate(node=NODE)) == "own record"
    assert candidate_filter.rejects(Seed("10.0.0.1", 7946).candidate()) == "own address"
    assert candidate_filter.rejects(mdns_candidate(fingerprint=bytes(32))) == "other cluster"
    assert candidate_filter.rejects(mdns_candidate()) is None
    assert candidate_filter.rejects(Seed("10.0.0.1", 7947).candidate()) is None


def test_filter_suppresses_repeats_within_the_window_only() -> None:
    candidate_filter = make_filter(window=5.0)
    candidate = mdns_candidate()
    assert not candidate_filter.is_repeat(candidate, 100.0)
    candidate_filter.offered(candidate, 100.0)
    assert candidate_filter.is_repeat(candidate, 104.9)
    assert not candidate_filter.is_repeat(candidate, 105.0)
    # Same (node, host, port) with new content (an updated API port) is news, not a repeat.
    assert not candidate_filter.is_repeat(mdns_candidate(api=9000), 101.0)
    candidate_filter.forget_before(105.0)
    assert not candidate_filter.is_repeat(candidate, 101.0)


# -- seeds through open_discovery, on the autojump clock ----------------------------------------


async def collect(discovery: Discovery, until: float) -> list[tuple[float, Candidate]]:
    """Every candidate offered until trio time ``until``, with the time it arrived."""
    seen: list[tuple[float, Candidate]] = []
    with trio.move_on_at(until):
        async for candidate in discovery.candidates():
            seen.append((trio.current_time(), candidate))
    return seen


async def test_seeds_are_offered_at_once_and_reoffered_with_jitter(autojump_clock: object) -> None:
    seeds = [parse_seed("10.0.0.2:7946"), parse_seed("[fd00::3]:7946")]
    start = trio.current_time()
    async with open_discovery(
        fingerprint=FINGERPRINT,
        node_id=NODE,
        host_ip="10.0.0.1",
        cluster_port=7946,
        api_port=4566,
        seeds=seeds,
        mdns=False,
        rng=random.Random(4),
    ) as discovery:
        seen = await collect(discovery, start + 600)
    assert seen[0][0] == seen[1][0] == start
    assert {candidate for _, candidate in seen} == {
        Candidate(None, "10.0.0.2", 7946, None, None, "seed"),
        Candidate(None, "fd00::3", 7946, None, None, "seed"),
    }
    rounds = sorted({at for at, _ in seen})
    assert len(seen) == 2 * len(rounds)
    gaps = [later - earlier for earlier, later in itertools.pairwise(rounds)]
    assert 15 <= len(gaps) <= 25
    assert all(24 <= gap <= 36 for gap in gaps)
    assert len({round(gap, 6) for gap in gaps}) > 1, "re-offers must be jittered"


async def test_own_address_and_duplicate_seeds_are_not_offered(autojump_clock: object) -> None:
    seeds = [parse_seed(text) for text in ("10.0.0.1:7946", "10.0.0.2:7946", "10.0.0.2:7946")]
    async with open_discovery(
        fingerprint=FINGERPRINT,
        node_id=NODE,
        host_ip="10.0.0.1",
        cluster_port=7946,
        api_port=4566,
        seeds=seeds,
        mdns=False,
    ) as discovery:
        seen = await collect(discovery, trio.current_time() + 1)
    assert [candidate for _, candidate in seen] == [Seed("10.0.0.2", 7946).candidate()]


async def test_candidates_end_when_discovery_closes(autojump_clock: object) -> None:
    async with open_discovery(
        fingerprint=FINGERPRINT,
        node_id=NODE,
        host_ip="10.0.0.1",
        cluster_port=7946,
        api_port=4566,
        mdns=False,
    ) as discovery:
        pass
    assert [candidate async for candidate in discovery.candidates()] == []


@pytest.mark.parametrize(
    ("overrides", "error", "complaint"),
    [
        ({"fingerprint": b"short"}, ValueError, "32 bytes"),
        ({"node_id": "not-an-id"}, ValueError, "malformed"),
        ({"dedupe_window": 30.0}, ValueError, "shorter than the re-offer"),
        ({"interfaces": []}, DiscoveryError, "explicit interfaces"),
        ({"host_ip": "fd00::1"}, DiscoveryError, "IPv4"),
        # TEST-NET-1 is on no interface of any test machine.
        ({"interfaces": ["192.0.2.77"]}, DiscoveryError, "cannot start mDNS"),
    ],
)
async def test_bad_arguments_are_refused_before_anything_runs(
    overrides: dict[str, object], error: type[Exception], complaint: str
) -> None:
    arguments: dict[str, object] = {
        "fingerprint": FINGERPRINT,
        "node_id": NODE,
        "host_ip": "127.0.0.1",
        "cluster_port": 7946,
        "api_port": 4566,
        "interfaces": ["127.0.0.1"],
    }
    with pytest.raises(error, match=complaint):
        async with open_discovery(**{**arguments, **overrides}):  # type: ignore[arg-type]
            pass


# -- mDNS on loopback -------------------------------------------------------------------------


class Node:
    """One announcer/browser on 127.0.0.1, recording what it is offered."""

    def __init__(self, fingerprint: bytes, cluster_port: int, api_port: int) -> None:
        self.fingerprint = fingerprint
        self.node_id = node_id()
        self.cluster_port = cluster_port
        self.api_port = api_port
        self.seen: list[Candidate] = []
        self.changed = trio.Event()
        self.discovery: Discovery | None = None

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        async with open_discovery(
            fingerprint=self.fingerprint,
            node_id=self.node_id,
            host_ip="127.0.0.1",
            cluster_port=self.cluster_port,
            api_port=self.api_port,
            interfaces=["127.0.0.1"],
        ) as self.discovery:
            task_status.started()
            async for candidate in self.discovery.candidates():
                self.seen.append(candidate)
                self.changed.set()
                self.changed = trio.Event()

    def saw(self, other: Node, api_port: int | None = None) -> bool:
        return any(
            candidate
            == Candidate(
                other.node_id,
                "127.0.0.1",
                other.cluster_port,
                api_port or other.api_port,
                other.fingerprint,
                "mdns",
                PROTOCOL_VERSION,
            )
            for candidate in self.seen
        )

    async def wait_until(self, condition: Callable[[], bool]) -> None:
        while not condition():
            await self.changed.wait()


class IgnoredRecords(logging.Handler):
    """Collects ``discovery.ignored`` log lines, which prove a record was seen, then refused."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())

    def ignored(self, node: Node, reason: str) -> int:
        return sum(node.node_id in line and f"reason={reason}" in line for line in self.lines)


@pytest.fixture
def ignored_records() -> Iterator[IgnoredRecords]:
    logger = logging.getLogger("cluster.discovery")
    handler = IgnoredRecords()
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    yield handler
    logger.removeHandler(handler)
    logger.setLevel(level)


async def poll(condition: Callable[[], bool]) -> None:
    while not condition():
        await trio.sleep(0.05)


@pytest.mark.slow
async def test_mdns_nodes_of_one_cluster_find_each_other_and_ignore_the_rest(
    ignored_records: IgnoredRecords,
) -> None:
    fingerprint = secrets.token_bytes(32)
    first, second = Node(fingerprint, 17946, 14566), Node(fingerprint, 17947, 14567)
    stranger = Node(secrets.token_bytes(32), 17948, 14568)
    async with trio.open_nursery() as nursery:
        for node in (first, second, stranger):
            await nursery.start(node.run)
        with trio.fail_after(30):
            await first.wait_until(lambda: first.saw(second))
            await second.wait_until(lambda: second.saw(first))
            # Both saw the stranger's record and their own, and refused them.
            await poll(lambda: ignored_records.ignored(stranger, "other cluster") >= 1)
            await poll(lambda: ignored_records.ignored(first, "own record") >= 1)
            await poll(lambda: ignored_records.ignored(second, "own record") >= 1)
            assert stranger.seen == []

            # A changed API port reaches the peer as a new candidate.
            assert first.discovery is not None
            await first.discovery.update(api_port=15000)
            await second.wait_until(lambda: second.saw(first, api_port=15000))
        nursery.cancel_scope.cancel()
    assert {candidate.node_id for candidate in first.seen} == {second.node_id}
    assert {candidate.node_id for candidate in second.seen} == {first.node_id}
