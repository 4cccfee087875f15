"""A skill is one file: the registry feeds plan validation, the LLM prompt and the executor; a
policy is never handed a skill it was not trained on."""

from __future__ import annotations

from vla_agent.agent.core.session import AgentConfig, Session
from vla_agent.agent.planning.llm import skills_text
from vla_agent.skills.library import get_skill


def test_the_llm_prompt_lists_every_registered_skill():
    text = skills_text()
    for name in ("pick", "place", "push", "place_beside"):
        assert f"- {name}(" in text
    assert get_skill("place_beside").doc in text


def test_a_skill_the_vla_was_not_trained_on_is_refused_before_anything_moves(tmp_path):
    session = Session(AgentConfig(scene="red block, green block, blue bowl", video=False, out=tmp_path))
    session.reset()
    try:
        result = session.executor.run("put the red block next to the blue bowl")
        assert result.status == "refused"
        assert "not trained on place_beside" in result.reason
        assert session.backend.applied == 0
    finally:
        session.close()
