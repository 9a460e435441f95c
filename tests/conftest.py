"""Shared fixtures: real agent processes.

- ``agent``: a real ``zeronode up`` (real journal and AWS services) on a fresh data dir and a
  free port, ready to serve. Skipped, saying why, while the journal or the services are absent.
- ``fake_agent``: the same CLI and agent with a fake journal and a tiny AWS app
  (``tests/agent_process.py``), for tests of the agent itself.
- ``agent_factory``: start more of either (``agent_factory(fake=True, data_dir=...)``).

Every agent still running at teardown is stopped with SIGTERM, and the test fails unless it
exits with status 0: a graceful stop is part of what every test checks.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.agent_process import AgentFactory, AgentProcess

# The suite starts a few hundred Python processes (agents, the AWS CLI, clients in network
# namespaces). With PYTHONDONTWRITEBYTECODE set (as some images do) each one compiles every
# zeronode module from source again: ~0.5 s per agent start, a sixth of the suite's time.
os.environ.pop("PYTHONDONTWRITEBYTECODE", None)


def _real_node_missing() -> str | None:
    try:
        from zeronode.journal import open_journal  # noqa: F401
        from zeronode.services import all_projections, build_aws_app  # noqa: F401
    except ImportError as error:
        return f"the real node is not assembled yet: {error}"
    return None


@pytest.fixture
def agent_factory(tmp_path: Path) -> Iterator[AgentFactory]:
    agents: list[AgentProcess] = []

    def start(
        *, fake: bool = False, data_dir: Path | None = None, wait: bool = True, **kwargs: Any
    ) -> AgentProcess:
        if not fake:
            missing = _real_node_missing()
            if missing:
                pytest.skip(missing)
        data_dir = data_dir or tmp_path / f"node{len(agents)}"
        process = AgentProcess(data_dir, fake=fake, log_dir=tmp_path, **kwargs)
        agents.append(process)
        return process.start(wait=wait)

    yield start

    failures = []
    for process in agents:
        if process.running:
            status = process.stop()
            if status != 0:
                failures.append(
                    f"agent on port {process.port} exited with {status}\n{process.output()}"
                )
    assert not failures, "\n".join(failures)


@pytest.fixture
def agent(agent_factory: AgentFactory) -> AgentProcess:
    return agent_factory()


@pytest.fixture
def fake_agent(agent_factory: AgentFactory) -> AgentProcess:
    return agent_factory(fake=True)
