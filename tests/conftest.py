import pytest

from vla_agent.sim import EnvConfig, TabletopEnv


@pytest.fixture(scope="module")
def env():
    e = TabletopEnv(EnvConfig())
    yield e
    e.close()
