import os

import pytest

# Ray reads these when it is imported (a test may import it before vla_agent.scale sets them):
# every Ray cluster of the tests listens on 127.0.0.1 only and sends no usage statistics.
os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

from vla_agent.sim import EnvConfig, TabletopEnv


@pytest.fixture(scope="module")
def env():
    e = TabletopEnv(EnvConfig())
    yield e
    e.close()


@pytest.fixture(scope="session", autouse=True)
def experience_store(tmp_path_factory):
    """Runs record their outcomes (predicted success); the tests' go to a private file, never
    the user's ~/.cache (subprocesses inherit the variable)."""
    path = tmp_path_factory.mktemp("experience") / "experience.jsonl"
    old = os.environ.get("VLA_AGENT_EXPERIENCE")
    os.environ["VLA_AGENT_EXPERIENCE"] = str(path)
    yield path
    if old is None:
        os.environ.pop("VLA_AGENT_EXPERIENCE", None)
    else:
        os.environ["VLA_AGENT_EXPERIENCE"] = old
