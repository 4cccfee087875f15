import pytest

from vla_agent.vla.collect import CollectConfig, collect


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory):
    out = tmp_path_factory.mktemp("demos") / "ds"
    result = collect(CollectConfig(out=out, episodes=6, seed=123, image_size=64))
    return out, result
