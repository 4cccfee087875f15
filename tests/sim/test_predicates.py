import numpy as np
import pytest

from vla_agent.errors import ConfigError
from vla_agent.sim.predicates import ObjectState, WorldState, evaluate, holds
from vla_agent.types import Predicate


def obj(name, kind, x, y, z, fingers=0):
    return ObjectState(name, kind, name.split()[0], np.array([x, y, z]), 0.0, fingers)


def world(*objs, reference=None):
    return WorldState({o.name: o for o in objs}, reference)


def test_in_bowl_and_not_when_outside_or_held():
    bowl = obj("blue bowl", "bowl", 0.5, 0.0, 0.0)
    assert evaluate(world(bowl, obj("red block", "block", 0.52, 0.01, 0.028)), "in(red block, blue bowl)")
    assert not evaluate(world(bowl, obj("red block", "block", 0.60, 0.0, 0.02)), "in(red block, blue bowl)")
    held = obj("red block", "block", 0.5, 0.0, 0.05, fingers=2)
    assert not evaluate(world(bowl, held), "in(red block, blue bowl)")
    assert evaluate(world(bowl, held), "holding(red block)")


def test_stack_and_plate():
    base = obj("green block", "block", 0.5, 0.0, 0.02)
    top = obj("blue block", "block", 0.51, 0.0, 0.06)
    assert evaluate(world(base, top), "on(blue block, green block)")
    assert not evaluate(world(base, top), "on(green block, blue block)")
    assert not evaluate(world(base, top), "clear(green block)")
    assert evaluate(world(base, top), "clear(blue block)")
    plate = obj("pink plate", "plate", 0.4, 0.1, 0.0)
    assert evaluate(world(plate, obj("red block", "block", 0.42, 0.1, 0.028)), "on(red block, pink plate)")
    assert not evaluate(world(plate, obj("red block", "block", 0.42, 0.1, 0.09)), "on(red block, pink plate)")


def test_regions_and_resting_on_table():
    assert evaluate(world(obj("red block", "block", 0.5, 0.2, 0.02)), "at(red block, left)")
    assert evaluate(world(obj("red block", "block", 0.5, -0.2, 0.02)), "at(red block, right)")
    assert evaluate(world(obj("red block", "block", 0.5, 0.0, 0.02)), "at(red block, center)")
    assert not evaluate(world(obj("red block", "block", 0.5, 0.2, 0.06)), "at(red block, left)")


def test_holding_requires_both_fingers_and_lift():
    assert not evaluate(world(obj("red block", "block", 0.5, 0, 0.05, fingers=1)), "holding(red block)")
    assert not evaluate(world(obj("red block", "block", 0.5, 0, 0.02, fingers=2)), "holding(red block)")
    assert evaluate(world(obj("red block", "block", 0.5, 0, 0.02)), "hand_empty()")


def test_moved_is_relative_to_reference():
    ref = {"red block": np.array([0.5, 0.0, 0.02])}
    w = world(obj("red block", "block", 0.5, 0.08, 0.02), reference=ref)
    assert evaluate(w, "moved(red block, left)")
    assert not evaluate(w, "moved(red block, right)")
    assert not evaluate(w, "moved(red block, forward)")
    assert not evaluate(world(obj("red block", "block", 0.5, 0.08, 0.02)), "moved(red block, left)")


def test_holds_lists_true_relations():
    bowl = obj("blue bowl", "bowl", 0.5, 0.0, 0.0)
    w = world(bowl, obj("red block", "block", 0.5, 0.0, 0.028), obj("green block", "block", 0.5, 0.2, 0.02))
    got = [str(p) for p in holds(w)]
    assert "in(red block, blue bowl)" in got
    assert "at(green block, left)" in got
    assert not any(s.startswith("at(red block") for s in got)


@pytest.mark.parametrize(
    "text, err, match",
    [
        ("inside(red block, blue bowl)", ConfigError, "unknown predicate 'inside'"),
        ("in(red blok, blue bowl)", ConfigError, r"did you mean 'red block'"),
        ("in red block", ValueError, "not a predicate"),
        ("moved(red block, up)", ConfigError, "unknown direction 'up'"),
    ],
)
def test_predicate_errors(text, err, match):
    w = world(obj("red block", "block", 0.5, 0, 0.02), obj("blue bowl", "bowl", 0.4, 0, 0))
    with pytest.raises(err, match=match):
        evaluate(w, text)


def test_predicate_round_trip():
    p = Predicate.parse("on( blue block , green block )")
    assert str(p) == "on(blue block, green block)"
    assert Predicate.parse(str(p)) == p
