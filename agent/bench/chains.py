"""Long-horizon benchmarks.

``run_chain_bench`` (``vla-agent bench chains``), CALVIN-style: each episode is a generated command
of 5 subgoals (placements into bowls and onto plates, stacks, table regions, pushes, a final pick)
in varied phrasing, in a randomized scene with distractors, run end to end (planner -> policy ->
shield -> backend, default perception detector). The simulator's ground truth judges every
subgoal as it ends; the chain length is how many of the 5 expected subgoals were achieved in order.

``run_detector_bench`` (``vla-agent bench detector``): precision and recall of the perception
detector against ground truth, per control step and per subgoal verdict.
"""

from __future__ import annotations

import json
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from vla_agent.agent.backends.sim import StateAudit
from vla_agent.agent.bench.server import served_vla
from vla_agent.agent.core.events import Event
from vla_agent.agent.core.session import AgentConfig, Session
from vla_agent.agent.core.stats import p50_p99
from vla_agent.agent.planning.compile import Goal, compile_goals
from vla_agent.agent.planning.llm import DEFAULT_MODEL
from vla_agent.errors import ConfigError
from vla_agent.scale import run_batch, save_result
from vla_agent.sim.catalog import COLORS, REGIONS, ObjectSpec, SceneSpec
from vla_agent.sim.predicates import evaluate
from vla_agent.skills.library import get_skill
from vla_agent.skills.tasks import episode_rng
from vla_agent.types import Scene

CHAIN_SEED_BASE = 2_000_000  # disjoint from training (< 10^6) and skill-eval (10^6..) seeds
CHAIN_LENGTH = 5

_PLACE = {
    "bowl": ("put the {o} in the {t}", "drop the {o} into the {t}", "place the {o} inside the {t}"),
    "plate": ("put the {o} on the {t}", "set the {o} onto the {t}", "place the {o} on top of the {t}"),
    "block": ("stack the {o} on the {t}", "put the {o} on top of the {t}", "place the {o} onto the {t}"),
    "region": (
        "move the {o} to the {t} side of the table",
        "put the {o} on the {t} side",
        "place the {o} at the {t} of the table",
    ),
}
_PUSH = ("push the {o} {d}", "slide the {o} to the {d}", "nudge the {o} {d}")
_PICK = ("pick up the {o}", "grab the {o}", "lift the {o}")
_JOIN = (", then ", " and then ", ". After that, ", ", after that ", ". Then ")
_LAST = (", and finally ", ". Finally, ", ", then ", " and then ")
_SYNONYM = {
    "block": ("block", "cube", "block"),
    "bowl": ("bowl", "container", "bowl"),
    "plate": ("plate", "dish", "plate"),
}


def _say(name: str, rng: np.random.Generator) -> str:
    color, kind = name.split()[:2]
    return f"{color} {_SYNONYM[kind][int(rng.integers(3))]}"


def sample_chain(seed: int) -> tuple[SceneSpec, list[tuple[str, str, str]]]:
    """A scene and 5 subgoals' worth of tasks: (kind, object, target or '?' for a push direction)."""
    rng = episode_rng(seed, 0)
    colors = [str(c) for c in rng.permutation(list(COLORS))]
    n_blocks = int(rng.integers(4, 6))
    blocks = [ObjectSpec(kind="block", color=colors.pop()) for _ in range(n_blocks)]
    bowl = ObjectSpec(kind="bowl", color=colors.pop())
    plate = ObjectSpec(kind="plate", color=colors.pop())
    scene = SceneSpec(objects=(*blocks, bowl, plate))
    shape = [(2, 2, 1), (2, 1, 2), (1, 2, 2)][int(rng.integers(3))]
    free = [b.label for b in blocks]
    rng.shuffle(free)
    tasks: list[tuple[str, str, str]] = []
    used_targets: set[str] = set()
    for i, size in enumerate(shape):
        obj = free.pop()
        if size == 1:
            tasks.append(
                ("pick", obj, "") if i == len(shape) - 1 and rng.random() < 0.3 else ("push", obj, "?")
            )
            continue
        options = ["bowl", "plate", "block", "region"]
        options = [o for o in options if o not in used_targets or o in ("region", "bowl")]
        kind = str(rng.choice(options))
        used_targets.add(kind)
        if kind == "bowl":
            target = bowl.label
        elif kind == "plate":
            target = plate.label
        elif kind == "block":
            target = free.pop()  # a block nobody else moves
        else:
            target = str(rng.choice(["left", "right", "centre", "front"]))
        tasks.append(("place", obj, target))
    return scene, tasks


def phrase(tasks: list[tuple[str, str, str]], rng: np.random.Generator, kinds: dict[str, str]) -> str:
    parts = []
    prev_obj = None
    for kind, obj, target in tasks:
        o = _say(obj, rng)
        if kind == "pick":
            parts.append(str(rng.choice(_PICK)).format(o=o))
        elif kind == "push":
            text = str(rng.choice(_PUSH))
            if target in ("forward", "backward"):  # "to the left", but not "to the forward"
                text = text.replace("to the {d}", "{d}")
            parts.append(text.format(o=o, d=target))
        else:
            tkind = kinds.get(target, "region")
            t = _say(target, rng) if target in kinds else target
            text = str(rng.choice(_PLACE[tkind])).format(o=o, t=t)
            if prev_obj is None and rng.random() < 0.3:  # "pick up X and put it in Y"
                text = f"{str(rng.choice(_PICK)).format(o=o)} and " + text.replace(f"the {o}", "it", 1)
            parts.append(text)
        prev_obj = obj
    out = parts[0]
    for i, p in enumerate(parts[1:], 2):
        out += str(rng.choice(_LAST if i == len(parts) else _JOIN)) + p
    return out[0].upper() + out[1:]


class ChainBenchConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    episodes: int = Field(100, ge=1)
    seed: int = CHAIN_SEED_BASE
    policy: str = "vla"
    checkpoint: Path | None = None  # a VLA checkpoint other than the shipped one
    planner: str = "offline"
    detector: str = "perception"
    llm_model: str = DEFAULT_MODEL
    llm_base_url: str | None = None
    randomize: bool = True
    max_retries: int = 1
    max_replans: int = 2
    home: bool = True  # the executor's move home before each pick or push
    robot: str = "panda"  # a registered RobotSpec (panda, xarm6)
    adapter: str | None = None  # a policy server's convention
    chunks: Literal["sync", "async", "hybrid"] = "sync"
    realtime: bool = False  # a policy server's latency costs control ticks
    server_latency_ms: float | None = Field(
        None, ge=0, description="serve the VLA locally, replies this late"
    )


class ChainRunner:
    """Runs chain episodes in its own session (simulator, policy, planner): an ``EpisodeWorker``
    of ``vla_agent.scale``. An episode's record depends only on its index and the config."""

    def __init__(self, cfg: ChainBenchConfig):
        self.cfg = cfg
        self.session = Session(
            AgentConfig(
                policy=cfg.policy,
                checkpoint=cfg.checkpoint,
                planner=cfg.planner,
                detector=cfg.detector,
                llm_model=cfg.llm_model,
                llm_base_url=cfg.llm_base_url,
                randomize=cfg.randomize,
                video=False,
                max_retries=cfg.max_retries,
                max_replans=cfg.max_replans,
                home=cfg.home,
                robot=cfg.robot,
                adapter=cfg.adapter,
                chunks=cfg.chunks,
                realtime=cfg.realtime or cfg.server_latency_ms is not None,
            )
        )

    def close(self) -> None:
        self.session.close()

    def episode(self, ep: int) -> dict:
        session, env = self.session, self.session.env
        seed = self.cfg.seed + ep
        redraws = 0
        for attempt in range(10):  # a crowded draw that does not fit the table: draw again
            draw = seed + attempt * 1_000_000  # a new scene *and* new placements
            scene_spec, tasks = sample_chain(draw)
            try:
                session.reset(seed=draw, scene=scene_spec.describe())
                break
            except ConfigError:
                redraws += 1
        else:
            raise ConfigError(f"chain {seed}: no scene draw fits the table in 10 attempts")
        rng = episode_rng(seed, 1)
        bound = []
        for kind, obj, target in tasks:
            if kind == "push":
                target = get_skill("push").bind(env, obj, rng).args["direction"]
            elif kind == "place" and target in REGIONS and env.evaluate(f"at({obj}, {target})"):
                # already there: a region the block is not in yet
                target = next(
                    r
                    for r in ("left", "right", "centre", "front", "back")
                    if not env.evaluate(f"at({obj}, {r})")
                )
            bound.append((kind, obj, target))
        kinds = env.kinds()
        command = phrase(bound, rng, kinds)
        goals = [
            Goal(
                "hold" if k == "pick" else k,
                o,
                target=t if k == "place" else "",
                direction=t if k == "push" else "",
            )
            for k, o, t in bound
        ]
        scene0 = Scene(tuple(session.backend.scene_objects()))
        expected = compile_goals(goals, scene0).subgoals
        assert len(expected) == CHAIN_LENGTH, (command, expected)
        state = {"k": 0, "shield": 0, "judged": 0, "false_done": 0, "false_failed": 0}
        outcomes: list[tuple[str, bool]] = []

        def judge(ev: Event) -> None:
            if ev.kind == "subgoal_start":
                env.snapshot()
            elif ev.kind == "shield":
                state["shield"] += 1
            elif ev.kind == "subgoal_end":
                skill, args = _executed(ev, session)
                ok = all(evaluate(env.world_state(), p) for p in get_skill(skill).ground("post", args, kinds))
                state["judged"] += 1
                outcomes.append((_variant(skill, args, kinds), ok))
                done = ev.data["status"] == "done"
                state["false_done"] += done and not ok
                state["false_failed"] += ok and not done
                k = state["k"]
                if k < len(expected) and ok and expected[k].skill == skill and dict(expected[k].args) == args:
                    state["k"] = k + 1

        session.events.subscribe(judge)
        t_ep = time.perf_counter()
        try:
            result = session.executor.run(command)
        finally:
            session.events.unsubscribe(judge)
        wall = time.perf_counter() - t_ep
        session.remember(result)  # benchmarks fill the experience store too
        plan = result.plan.subgoals if result.plan is not None else []
        broken = None
        if state["k"] < CHAIN_LENGTH:
            stop = expected[state["k"]]
            broken = _variant(stop.skill, dict(stop.args), kinds)
        states = session.backend.states
        record = {
            "seed": seed,
            "command": command,
            "completed": state["k"],
            "status": result.status,
            "reason": result.reason,
            "planner_ok": [(s.skill, dict(s.args)) for s in plan]
            == [(s.skill, dict(s.args)) for s in expected],
            "outcomes": outcomes,
            "broken_at": broken,
            "judged": state["judged"],
            "false_done": int(state["false_done"]),
            "false_failed": int(state["false_failed"]),
            "shield": state["shield"],
            "unsafe_actions": session.backend.unsafe_actions,
            "unsafe_states": states.unsafe_states,
            "worst": dict(states.worst),
            "overhead_ms": [round(x, 4) for x in result.overhead_ms],
            "executed": len(result.outcomes),
            "steps": result.steps,
            "sim_s": result.steps / env.config.control_hz,  # simulated seconds
            "wall_s": wall,  # the one field that depends on the machine: not compared across runs
            "redraws": redraws,
        }
        session.backend.unsafe_actions = 0
        session.backend.states = StateAudit()
        return record


def run_chain_bench(
    cfg: ChainBenchConfig,
    progress: Callable[[int, int], None] | None = None,
    *,
    workers: int = 1,
    ray_address: str | None = None,
    out: Path | None = None,
) -> dict:
    """The chain figures of ``cfg``: episodes in this process, or on ``workers`` Ray workers (or
    the cluster at ``ray_address``); with ``out``, per-episode records go to
    ``out/episodes.jsonl`` as they finish and a second run with the same folder resumes."""
    t0 = time.perf_counter()
    with served_vla(cfg) as served:
        records, run = run_batch(
            partial(ChainRunner, served),
            range(cfg.episodes),
            json.loads(cfg.model_dump_json()),
            workers=workers,
            ray_address=ray_address,
            out=out,
            progress=progress,
        )
    result = {**aggregate_chains(records, cfg), "wall_s": time.perf_counter() - t0, **run}
    save_result(out, result)
    return result


def aggregate_chains(records: list[dict], cfg: ChainBenchConfig) -> dict:
    """The benchmark's figures from its per-episode records (in episode order)."""
    lengths = np.array([r["completed"] for r in records])
    outcomes: dict[str, list[bool]] = defaultdict(list)
    for r in records:
        for variant, ok in r["outcomes"]:
            outcomes[variant].append(ok)
    states = StateAudit()
    for r in records:
        other = StateAudit()
        other.unsafe_states, other.worst = r["unsafe_states"], r["worst"]
        states.absorb(other)
    judged = sum(r["judged"] for r in records)
    false_done = sum(r["false_done"] for r in records)
    false_failed = sum(r["false_failed"] for r in records)
    oh = np.array([x for r in records for x in r["overhead_ms"]] or [0.0])
    executed = sum(r["executed"] for r in records)
    episodes = [{k: r[k] for k in ("seed", "command", "completed", "status", "reason")} for r in records]
    return {
        "benchmark": "chains",
        "episodes": len(records),
        "policy": cfg.policy,
        "planner": cfg.planner,
        "detector_kind": cfg.detector,
        "avg_len": float(lengths.mean()),
        "chain_success": float((lengths == CHAIN_LENGTH).mean()),
        "per_position": [float((lengths >= k).mean()) for k in range(1, CHAIN_LENGTH + 1)],
        "planner_accuracy": float(np.mean([r["planner_ok"] for r in records])),
        "detector": {
            "subgoals_judged": judged,
            "false_done": false_done,
            "false_failed": false_failed,
            "disagreement_rate": float((false_done + false_failed) / max(judged, 1)),
        },
        "per_skill": {
            k: {"subgoals": len(v), "success": float(np.mean(v))} for k, v in sorted(outcomes.items())
        },
        "broken_at": dict(Counter(r["broken_at"] for r in records if r["broken_at"]).most_common()),
        "shield_interventions": sum(r["shield"] for r in records),
        "unsafe_actions_reached_backend": sum(r["unsafe_actions"] for r in records),
        "unsafe_states_reached": states.unsafe_states,
        "worst_state_excursion": states.worst,
        "seconds_per_subgoal": sum(r["wall_s"] for r in records) / max(executed, 1),
        "overhead_ms_per_step": p50_p99(oh),
        "simulated_s_per_wall_s": sum(r["sim_s"] for r in records)
        / max(sum(r["wall_s"] for r in records), 1e-9),
        "setup_redraws": sum(r["redraws"] for r in records),
        "examples": episodes[:5],
        "failures": [e for e in episodes if e["completed"] < CHAIN_LENGTH][:10],
        "config": json.loads(cfg.model_dump_json()),
    }


def _variant(skill: str, args: dict[str, str], kinds: dict[str, str]) -> str:
    """The skill refined by what it acts on, for reporting: ``place/bowl``, ``place/region``..."""
    if skill != "place":
        return skill
    return f"place/{kinds.get(args['target'], 'region')}"


def _executed(ev: Event, session: Session) -> tuple[str, dict[str, str]]:
    """The skill and args of the subgoal a ``subgoal_end`` event refers to."""
    start = next(
        e
        for e in reversed(session.events.history)
        if e.kind == "subgoal_start" and e.data["index"] == ev.data["index"]
    )
    return start.data["skill"], dict(start.data["args"])
