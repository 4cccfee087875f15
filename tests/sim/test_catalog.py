import pytest

from vla_agent.errors import ConfigError
from vla_agent.sim.catalog import COLORS, KINDS, ObjectSpec, SceneSpec, canonical_region


def test_catalogue_has_enough_colours_and_kinds():
    assert len(COLORS) >= 8
    assert {"block", "bowl", "plate"} <= set(KINDS)


def test_parse_counts_plurals_and_synonyms():
    s = SceneSpec.parse("red block, 2 green blocks and a blue bowl, two yellow cubes, pink plate")
    assert s.names == [
        "red block",
        "green block",
        "green block 2",
        "blue bowl",
        "yellow block",
        "yellow block 2",
        "pink plate",
    ]


@pytest.mark.parametrize(
    "text, match",
    [
        ("red blok", r"unknown object kind 'blok' \(did you mean 'block'\?\); valid: block"),
        ("rde block", r"unknown colour 'rde' \(did you mean 'red'\?\)"),
        ("magenta block", r"unknown colour 'magenta'; valid: blue, brown"),
        ("big red block", r"cannot read scene item 'big red block'"),
        ("", "empty scene"),
        (" , ,", "empty scene"),
        ("13 red blocks", r"13 objects do not fit on the table \(max 12\)"),
    ],
)
def test_scene_errors_are_one_line_and_name_the_problem(text, match):
    with pytest.raises(ConfigError, match=match) as e:
        SceneSpec.parse(text)
    assert "\n" not in str(e.value)


def test_position_outside_workspace_is_rejected():
    with pytest.raises(ValueError, match="outside the workspace"):
        ObjectSpec(kind="block", color="red", position=(1.5, 0.0))


def test_unknown_fields_are_rejected():
    with pytest.raises(ValueError, match="Extra inputs"):
        ObjectSpec(kind="block", color="red", size=3)


def test_empty_scene_spec_is_rejected():
    with pytest.raises(ValueError, match="at least one object"):
        SceneSpec(objects=())


def test_region_aliases_and_errors():
    assert canonical_region("Center") == "centre"
    assert canonical_region("far") == "back"
    with pytest.raises(ConfigError, match=r"unknown region 'lefft' \(did you mean 'left'\?\)"):
        canonical_region("lefft")
