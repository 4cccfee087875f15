import numpy as np
import pytest

from vla_agent.errors import ConfigError
from vla_agent.skills.library import all_skills, get_skill, skill_names, skill_of_instruction
from vla_agent.types import Predicate


def test_library_has_required_skills_with_paraphrases():
    assert {"pick", "place", "push", "place_beside"} <= set(skill_names())
    for s in all_skills():
        for templates in s.templates.values():
            assert len(templates) - s.n_heldout >= 5 and s.n_heldout >= 1  # train plus held-out paraphrases
        assert s.step_budget > 0 and s.effects


@pytest.mark.parametrize(
    "target, relation",
    [("blue bowl", "in"), ("pink plate", "on"), ("green block", "on"), ("left", "at"), ("center", "at")],
)
def test_place_relation_and_effects(target, relation):
    place = get_skill("place")
    sg = place.subgoal({"obj": "red block", "target": target})
    effects = place.ground("post", sg.args)
    assert effects[0] == Predicate(relation, ("red block", sg.args["target"]))
    assert Predicate("hand_empty") in effects
    assert "red block" in sg.instruction


def test_train_and_heldout_paraphrases_are_disjoint():
    pick = get_skill("pick")
    train = set(pick.paraphrases({"obj": "red block"}, "train"))
    held = set(pick.paraphrases({"obj": "red block"}, "heldout"))
    assert train and held and not train & held
    rng = np.random.default_rng(0)
    assert {pick.instruction({"obj": "red block"}, rng, "heldout") for _ in range(20)} <= held


@pytest.mark.parametrize(
    "name, args, match",
    [
        ("pick", {"obj": "red block", "target": "x"}, "takes \\(obj\\)"),
        ("place", {"obj": "red block"}, "missing argument"),
        ("push", {"obj": "red block", "direction": "upward"}, "unknown direction 'upward'"),
    ],
)
def test_bad_arguments(name, args, match):
    with pytest.raises(ConfigError, match=match):
        get_skill(name).subgoal(args)


def test_unknown_skill_suggests():
    with pytest.raises(ConfigError, match=r"unknown skill 'plaec' \(did you mean 'place'\?\)"):
        get_skill("plaec")


def test_crowded_tasks_have_the_scenes_of_bench_chains():
    """4-5 blocks, one bowl and one plate whatever the skill and target; default draws keep at
    most one bowl or plate among the distractors."""
    from vla_agent.skills.tasks import episode_rng, sample_task

    for seed in range(40):
        for skill in ("pick", "place", "push"):
            kinds = [o.kind for o in sample_task(episode_rng(seed, 0), skill, crowded=True).scene.objects]
            assert 4 <= kinds.count("block") <= 5 and kinds.count("bowl") == kinds.count("plate") == 1
            sparse = sample_task(episode_rng(seed, 0), skill).scene.objects[1:]
            assert sum(o.kind != "block" for o in sparse) <= (2 if skill == "place" else 1)


def test_skill_of_instruction_recovers_the_skill_of_every_paraphrase():
    args = {"obj": "red block", "target": "blue bowl", "direction": "left"}
    for s in all_skills():
        for templates in s.templates.values():
            for t in templates:  # training and held-out paraphrases alike
                assert skill_of_instruction(t.format(**args)) == s.name, t
    assert skill_of_instruction("  Nudge the red block   LEFT ") == "push"
    assert skill_of_instruction("wave at the camera") is None
