"""logged:PATH, a simulated arm that appends every command it executes to a JSON-lines file: a
template for a real driver (``state``, ``move``, ``stop``, ``wrist_image``, ``close``, and the
``robot`` and ``mount`` the session builds the shield from)."""

from __future__ import annotations

import json
import time
from pathlib import Path

from vla_agent.agent.real.arms import TwinArm


class LoggedArm(TwinArm):
    """The simulator's arm; each executed action is one line of ``path``."""

    name = "logged"

    def __init__(self, path: str, scene=None, seed: int = 0):
        super().__init__(scene, seed)
        self.path = Path(path)

    def move(self, action) -> None:
        super().move(action)
        with self.path.open("a") as f:
            f.write(json.dumps({"t": time.time(), "action": [float(v) for v in action]}) + "\n")


def make_logged_arm(arg: str, scene=None, seed: int = 0) -> LoggedArm:
    """a simulated arm logging every command to a JSON-lines file (logged:PATH)"""
    if not arg:
        raise ValueError("arm logged needs a file: logged:PATH")
    return LoggedArm(arg, scene, seed)
