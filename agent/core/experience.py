"""Predicted success from experience: a small local store of per-skill outcomes.

Every run and benchmark appends what happened to each subgoal (skill, target kind, robot,
policy, success, steps) to a JSON-lines file (``~/.cache/vla-agent/experience.jsonl``, or
``$VLA_AGENT_EXPERIENCE``; an empty value switches it off). A subgoal's predicted success is the
Laplace-smoothed success rate of its (skill, target kind, robot, policy), ``(s + 1) / (n + 2)``
(0.5 with no experience); a plan's is the product over its subgoals. The offline planner picks
the likelier of equivalent plans ("in a bowl or on a plate"), and a plan below ``LOW`` is shown
with a warning and confirmed before it runs."""

from __future__ import annotations

import json
import os
from collections import defaultdict
from pathlib import Path

from vla_agent.types import Subgoal

LOW = 0.5  # a plan predicted to succeed less often than this is confirmed before it runs


def default_path() -> Path | None:
    env = os.environ.get("VLA_AGENT_EXPERIENCE")
    if env is not None:
        return Path(env) if env else None
    return Path.home() / ".cache" / "vla-agent" / "experience.jsonl"


def target_kind(sg: Subgoal, kinds: dict[str, str]) -> str:
    """What a subgoal acts towards: the target's kind (bowl, plate, block), "region", or ""."""
    target = sg.args.get("target", "")
    return kinds.get(target, "region" if target else "")


class Experience:
    def __init__(self, path: Path | None, robot: str = "panda", policy: str = "vla"):
        self.path, self.robot, self.policy = path, robot, policy
        self.counts: dict[tuple[str, str, str, str], list[int]] = defaultdict(lambda: [0, 0])
        if path is not None and path.exists():
            for line in path.read_text().splitlines():
                try:
                    r = json.loads(line)
                    self._count(r["skill"], r["target_kind"], r["robot"], r["policy"], bool(r["success"]))
                except (ValueError, KeyError, TypeError):
                    continue  # a damaged line costs that line only

    def _count(self, skill: str, kind: str, robot: str, policy: str, success: bool) -> None:
        c = self.counts[(skill, kind, robot, policy)]
        c[0] += success
        c[1] += 1

    def record(self, sg: Subgoal, kinds: dict[str, str], success: bool, steps: int) -> None:
        kind = target_kind(sg, kinds)
        self._count(sg.skill, kind, self.robot, self.policy, success)
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        row = {"skill": sg.skill, "target_kind": kind, "robot": self.robot, "policy": self.policy}
        with self.path.open("a") as f:
            f.write(json.dumps({**row, "success": bool(success), "steps": int(steps)}) + "\n")

    def predict(self, skill: str, kind: str) -> tuple[float, int]:
        """(predicted success, outcomes it rests on) for this robot and policy."""
        s, n = self.counts.get((skill, kind, self.robot, self.policy), (0, 0))
        return (s + 1) / (n + 2), n

    def predict_plan(self, subgoals: list[Subgoal], kinds: dict[str, str]) -> dict:
        each = [self.predict(sg.skill, target_kind(sg, kinds)) for sg in subgoals]
        total = 1.0
        for p, _ in each:
            total *= p
        return {
            "subgoals": [round(p, 3) for p, _ in each],
            "samples": [n for _, n in each],
            "plan": round(total, 3),
            # a warning only on experience: at least 5 outcomes behind every subgoal's figure
            "low": total < LOW and all(n >= 5 for _, n in each),
        }
