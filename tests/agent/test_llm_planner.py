"""The LLM planner through LangChain against a scripted OpenAI-compatible server on 127.0.0.1."""

import json
import time

import pytest

pytest.importorskip("langchain")
pytest.importorskip("langchain_openai")

from fake_openai import FakeOpenAI  # noqa: E402

from vla_agent.agent.planning.llm import LLMPlanner, PlannerError, prompt, render, skills_text  # noqa: E402
from vla_agent.agent.planning.offline import OfflinePlanner  # noqa: E402
from vla_agent.agent.planning.plan import PlanError  # noqa: E402
from vla_agent.types import Scene, SceneObject, Status, StepOutcome, Subgoal  # noqa: E402

SCENE = Scene(
    tuple(SceneObject(n, n.split()[1], n.split()[0]) for n in ("red block", "blue block", "green bowl"))
)
GOOD = (
    '{"subgoals": [{"skill": "pick", "args": {"obj": "red block"}, "instruction": "grab it"},'
    ' {"skill": "place", "args": {"obj": "red block", "target": "green bowl"}, "instruction": "drop it"}]}'
)
HALLUCINATED = '{"subgoals": [{"skill": "pick", "args": {"obj": "purple block"}, "instruction": "x"}]}'


def planner(server, **kw):
    return LLMPlanner("openai:gpt-4o-mini", base_url=server.base_url, timeout=kw.pop("timeout", 5), **kw)


def test_prompts_render():
    assert "JSON" in prompt("system.md")
    text = render(
        "user.md",
        skills=skills_text(),
        objects="red block",
        relations="none",
        regions="left",
        directions="left",
        command="do it",
    )
    assert "pick(obj" in text and "Command: do it" in text


def test_valid_plan_over_http():
    with FakeOpenAI([GOOD]) as srv:
        plan = planner(srv).plan("put the red block in the bowl", SCENE)
    assert [(s.skill, s.args) for s in plan.subgoals] == [
        ("pick", {"obj": "red block"}),
        ("place", {"obj": "red block", "target": "green bowl"}),
    ]
    # the instruction the VLA hears comes from the skill template, not from the model
    assert plan.subgoals[0].instruction == "pick up the red block"
    req = srv.requests[0]
    assert req["response_format"]["type"] == "json_schema"  # the best form the server takes
    assert req["messages"][0]["role"] == "system" and "green bowl" in req["messages"][-1]["content"]


def test_malformed_then_hallucinated_then_valid_with_feedback():
    with FakeOpenAI(["this is not json {", HALLUCINATED, GOOD]) as srv:
        p = planner(srv, retries=2)
        plan = p.plan("put the red block in the bowl", SCENE)
    assert p.last_attempts == 3 and len(plan.subgoals) == 2
    feedback = srv.requests[2]["messages"][-1]["content"]
    assert "purple block" in feedback and "not in the scene" in feedback


def test_invalid_answers_exhaust_retries_with_a_clear_error():
    with FakeOpenAI([HALLUCINATED, HALLUCINATED]) as srv, pytest.raises(PlannerError, match="purple block"):
        planner(srv, retries=1).plan("put the red block in the bowl", SCENE)


def test_refusal_is_passed_through():
    with FakeOpenAI(['{"refused": "there is no banana"}']) as srv:
        plan = planner(srv).plan("put the banana in the bowl", SCENE)
    assert plan.refused == "there is no banana" and not plan.subgoals


def test_timeout_fails_fast_or_falls_back_to_offline():
    with FakeOpenAI([("sleep", 3.0)]) as srv:
        t0 = time.perf_counter()
        with pytest.raises(PlannerError, match="timeout"):
            planner(srv, timeout=0.5).plan("put the red block in the bowl", SCENE)
        assert time.perf_counter() - t0 < 2.5
    with FakeOpenAI([("sleep", 3.0)]) as srv:
        plan = planner(srv, timeout=0.5, fallback=OfflinePlanner()).plan(
            "put the red block in the bowl", SCENE
        )
    assert plan.planner == "offline" and "timeout" in plan.fallback and len(plan.subgoals) == 2
    assert plan.latency_ms >= 500  # the user's whole wait, the timed-out request included


def test_replan_sends_history_and_scene():
    history = [
        StepOutcome(
            Subgoal("pick", {"obj": "red block"}, "pick up the red block"), Status.FAILED, 2, 80, "budget"
        )
    ]
    with FakeOpenAI([GOOD]) as srv:
        planner(srv).replan("put the red block in the bowl", SCENE, history)
    text = srv.requests[0]["messages"][-1]["content"]
    assert "pick up the red block (budget)" in text and "green bowl" in text


def test_the_llm_plans_a_skill_added_as_one_file():
    """place_beside reaches the model through the registry (the prompt's skill list) and its plan is
    validated like any other; a beside-the-held-block step is fed back as a validation error."""
    beside = (
        '{"subgoals": [{"skill": "pick", "args": {"obj": "red block"}, "instruction": "x"},'
        ' {"skill": "place_beside", "args": {"obj": "red block", "target": "%s"}, "instruction": "x"}]}'
    )
    with FakeOpenAI([beside % "red block", beside % "green bowl"]) as srv:
        plan = planner(srv).plan("put the red block next to the bowl", SCENE)
    assert "place_beside(obj" in srv.requests[0]["messages"][-1]["content"]
    assert [(s.skill, s.args) for s in plan.subgoals] == [
        ("pick", {"obj": "red block"}),
        ("place_beside", {"obj": "red block", "target": "green bowl"}),
    ]
    assert plan.subgoals[1].instruction == "put the red block next to the green bowl"
    assert "next to itself" in srv.requests[1]["messages"][-1]["content"]  # the error fed back


@pytest.mark.parametrize("server", ["slow", "unreachable"])
def test_plan_json_says_the_llm_fell_back_and_why(server, capsys):
    """`vla-agent plan --planner llm --json` over real HTTP: a slow or unreachable server yields the
    offline plan, and the JSON says so (planner, fallback reason, the whole wait)."""
    import socket

    from vla_agent.cli import main

    def plan(url: str) -> dict:
        llm = ["--planner", "llm", "--llm-base-url", url, "--llm-timeout", "0.5"]
        code = main(
            ["plan", "put the red block in the bowl", "--scene", "red block, blue bowl", *llm, "--json"]
        )
        assert code == 0
        return json.loads(capsys.readouterr().out.strip().splitlines()[-1])

    if server == "slow":
        with FakeOpenAI([("sleep", 3.0)]) as srv:
            out = plan(srv.base_url)
        assert "timeout" in out["fallback"] and out["plan_latency_ms"] >= 500
    else:
        with socket.socket() as s:  # a port nobody listens on
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        out = plan(f"http://127.0.0.1:{port}/v1")
        assert "cannot reach" in out["fallback"] or "Connection" in out["fallback"]
    assert out["planner"] == "offline" and [s["skill"] for s in out["subgoals"]] == ["pick", "place"]


@pytest.mark.parametrize(
    "behaviour, method, rejected",
    [
        ("all", "json_schema", []),
        ("no_json_schema", "function_calling", ["json_schema"]),
        ("tools_only", "function_calling", ["json_schema"]),
        ("json_mode_only", "json_mode", ["json_schema", "tools"]),
        ("text_only", "text", ["json_schema", "tools", "json_object"]),
    ],
)
def test_the_structured_output_method_is_detected_once_per_server(behaviour, method, rejected):
    """Each server gets the best form it takes; the probing happens once, then it is cached."""
    with FakeOpenAI([GOOD, GOOD], behaviour=behaviour) as srv:
        p = planner(srv)
        first = p.plan("put the red block in the bowl", SCENE)
        second = p.plan("put the red block in the bowl", SCENE)
    assert p.method_used == method and srv.rejected == rejected  # the second plan probed nothing
    for plan in (first, second):
        assert [s.skill for s in plan.subgoals] == ["pick", "place"]


def test_wrapped_and_truncated_answers_are_repaired():
    wrapped = "Here is the plan:\n```json\n" + GOOD.replace("}]}", "},]}") + "\n```"
    truncated = GOOD[: GOOD.rindex('"instruction"') - 2]  # cut off inside the last step
    with FakeOpenAI([wrapped, truncated], behaviour="text_only") as srv:
        p = planner(srv)
        for _ in range(2):
            plan = p.plan("put the red block in the bowl", SCENE)
            assert [s.skill for s in plan.subgoals] == ["pick", "place"] and p.last_attempts == 1


def test_the_llm_asks_instead_of_guessing():
    ask = '{"question": "which block do you mean?", "options": ["red block", "blue block"]}'
    bad = '{"question": "which block do you mean?", "options": ["purple block", "blue block"]}'
    with FakeOpenAI([bad, ask]) as srv:
        plan = planner(srv).plan("put the block in the bowl", SCENE)
    assert plan.question == "which block do you mean?" and plan.options == ["red block", "blue block"]
    assert "named exactly as in the scene" in srv.requests[1]["messages"][-1]["content"]  # fed back


def test_hybrid_planner_sends_the_llm_only_what_the_offline_planner_cannot_read():
    from vla_agent.agent.core.session import AgentConfig
    from vla_agent.agent.planning.planners import make_planner

    odd = "make the red block keep the green bowl company"  # no verb the offline grammar knows
    with FakeOpenAI([GOOD, "not json", "not json", "not json"]) as srv:
        p = make_planner(AgentConfig(planner="hybrid", llm_base_url=srv.base_url, llm_model="openai:test"))
        plain = p.plan("put the red block in the bowl", SCENE)
        assert plain.planner == "offline" and srv.requests == []  # no request for what it reads
        odd_plan = p.plan(odd, SCENE)
        assert odd_plan.planner == "llm" and "offline planner could not" in odd_plan.fallback
        with pytest.raises(PlanError, match="the LLM could not plan it either"):
            p.plan("make the blue block keep the green bowl company", SCENE)


def test_the_prompt_shows_every_registered_skill_by_example():
    from vla_agent.agent.planning.llm import registry_examples

    shown = {json.loads(ex["answer"])["subgoals"][-1]["skill"] for ex in registry_examples()}
    assert "place_beside" in shown  # not in prompts/examples.yaml: generated from the registry
    with FakeOpenAI([GOOD]) as srv:
        planner(srv).plan("put the red block in the bowl", SCENE)
    sent = " ".join(m["content"] or "" for m in srv.requests[0]["messages"])
    assert "put the red block next to the blue bowl" in sent and "which one do you mean" in sent
