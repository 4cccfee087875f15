"""Registries: specs, did-you-mean, plugins by entry point; every built-in part implements its
interface."""

import importlib.metadata

import pytest

from vla_agent.errors import ConfigError
from vla_agent.interfaces import ArmDriver, Planner, RobotBackend, SkillPolicy, SuccessDetector
from vla_agent.registry import Registry, parse_spec


def test_specs_and_did_you_mean():
    assert parse_spec("xarm:192.168.1.5") == ("xarm", "192.168.1.5")
    assert parse_spec("ws://127.0.0.1:8000") == ("ws", "ws://127.0.0.1:8000")
    assert parse_spec("twin") == ("twin", "")
    reg: Registry = Registry("gadget")
    reg.register("xarm", lambda arg, **kw: ("xarm", arg), form="xarm:IP")
    assert reg.create("xarm:10.0.0.2") == ("xarm", "10.0.0.2")
    with pytest.raises(
        ConfigError, match=r"unknown gadget 'xram:1' \(did you mean 'xarm'\?\); valid: xarm:IP"
    ):
        reg.create("xram:1")
    with pytest.raises(ConfigError, match="registered twice"):
        reg.register("xarm", lambda arg: None)


def test_a_plugin_registers_through_its_entry_point(monkeypatch):
    class EP:
        name, value, dist = "myarm", "mypkg.arm:factory", None

        def load(self):
            def factory(arg, **kw):
                """An arm from another package."""
                return f"myarm at {arg}"

            return factory

    class Broken(EP):
        name = "broken"

        def load(self):
            raise ImportError("no module named mypkg")

    monkeypatch.setattr(importlib.metadata, "entry_points", lambda group: [EP(), Broken()])
    reg: Registry = Registry("arm", entry_point_group="vla_agent.arms")
    assert reg.names() == ["myarm"] and reg.create("myarm:1.2.3.4") == "myarm at 1.2.3.4"
    assert reg.entries()[0].help == "An arm from another package."
    assert "broken" in reg.errors[0] and "ImportError" in reg.errors[0]  # listed, not fatal


def test_built_in_parts_implement_their_interfaces(env):
    from vla_agent.agent.backends.sim import SimBackend
    from vla_agent.agent.core.policies import POLICIES
    from vla_agent.agent.core.session import AgentConfig
    from vla_agent.agent.perception.detectors import DETECTORS
    from vla_agent.agent.perception.objects import Perception
    from vla_agent.agent.planning.planners import PLANNERS
    from vla_agent.agent.real.arms import ARMS

    for name in ("vla", "expert"):
        assert isinstance(POLICIES.create(name, env), SkillPolicy)
    cfg = AgentConfig()
    for name in PLANNERS.names():
        assert isinstance(PLANNERS.create(name, cfg), Planner)
    backend = SimBackend(env)
    backend.reset(seed=0)
    assert isinstance(backend, RobotBackend)
    perception = Perception(backend.scene_objects(), backend.camera)
    for name in DETECTORS.names():
        assert isinstance(DETECTORS.create(name, env)(perception, None), SuccessDetector)
    arm = ARMS.create("twin")
    assert isinstance(arm, ArmDriver)
    arm.close()


def test_plugins_command_lists_every_kind(capsys):
    import json

    from vla_agent.cli import main

    assert main(["plugins", "--json"]) == 0
    parts = json.loads(capsys.readouterr().out)["parts"]
    kinds = {p["kind"] for p in parts}
    assert {"policy", "planner", "detector", "arm"} <= kinds
    assert {"usage": "ws://HOST:PORT", "kind": "policy"}.items() <= next(
        p for p in parts if p["name"] == "ws"
    ).items()
