"""Stand-in servers for hosted VLAs we cannot run here (a π0 LIBERO checkpoint, OpenVLA-7B):
each speaks its project's real protocol and convention, and is driven by our scripted expert
reading the simulator, its actions encoded into the foreign convention. They exist to prove the
adapters: a request that does not follow the convention is refused the way the real server
would fail (a traceback frame, or ``"error"``), and a wrong output adapter makes the robot
misbehave visibly.

- ``openpi-libero``: openpi's ``WebsocketPolicyServer`` protocol (a msgpack-numpy metadata frame
  on connect, then one reply per request with ``server_timing``; ``GET /healthz``), LIBERO inputs
  checked (224 px uint8 images, the static one rotated 180°; the 8-D state against the robot's
  measured pose) and a ``(10, 7)`` chunk of OSC_POSE actions at 20 Hz.
- ``openvla-bridge``: ``deploy.py``'s ``POST /act`` with json-numpy bodies (the real
  ``json_numpy`` package decodes and encodes), one Bridge action of 7 per call.

The expert is closed-loop; a chunk is its action now, then its actions on the poses that
would follow if the arm tracked them exactly, up to the waypoint it is heading for (then still):
the next request sees where the arm really got to.
"""

from __future__ import annotations

import copy
import http.server
import json
import threading
import time
import traceback
from dataclasses import dataclass

import numpy as np

from vla_agent.errors import ConfigError
from vla_agent.sim.env import TabletopEnv
from vla_agent.types import Subgoal

from . import ADAPTERS, AdapterConfig
from .convention import axisangle_to_matrix, encode_actions, euler_to_matrix, resize_with_pad

CHUNK_TICKS = 5  # our ticks per stand-in chunk: 10 LIBERO steps at 20 Hz


class ExpertBehindConvention:
    """Answers a request in ``cfg``'s convention with the expert's action for the prompt."""

    def __init__(self, env: TabletopEnv, cfg: AdapterConfig):
        from vla_agent.skills.experts import ExpertPolicy

        self.env, self.cfg = env, cfg
        self.expert = ExpertPolicy(env)
        self.prompt: str | None = None
        self.lock = threading.Lock()  # one request at a time reads the simulator

    def _subgoal(self, prompt: str) -> Subgoal:
        from vla_agent.skills.library import parse_instruction

        reading = parse_instruction(prompt, list(self.env.names))
        if reading is None:
            raise ValueError(f"the stand-in cannot read the prompt {prompt!r}")
        skill, args = reading
        if "obj" not in args:  # "put it in the bowl": the held object
            held = next((n for n in self.env.names if self.env.evaluate(f"holding({n})")), None)
            if held is None:
                raise ValueError(f"{prompt!r} names no object and nothing is held")
            args["obj"] = held
        return Subgoal(skill, args, prompt)

    def chunk(self, prompt: str) -> np.ndarray:
        """The expert's action for this moment, in the foreign convention, over a chunk."""
        with self.lock:
            if prompt != self.prompt:
                self.expert.reset(self._subgoal(prompt))
                self.prompt = prompt
            state = self.env.robot_state().astype(np.float64)
            actions = [self._act(state)]  # the one that will be executed: the expert moves on
            saved = {k: copy.copy(v) for k, v in vars(self.expert).items()}
            phase, predicted = self.expert.phase, state.copy()
            hold = np.concatenate([np.zeros(6), actions[0][6:]])
            for _ in range(CHUNK_TICKS - 1):  # the rest: on toward the same waypoint, then still
                predicted[:6] += actions[-1][:6]
                a = self._act(predicted) if self.expert.phase == phase and not self.expert.done else hold
                actions.append(a if self.expert.phase == phase else hold)
            vars(self.expert).update(saved)
            return encode_actions(self.cfg, np.array(actions), state)

    def _act(self, state: np.ndarray) -> np.ndarray:
        if self.expert.done:
            return np.array([0, 0, 0, 0, 0, 0, 1.0 if self.env.gripper_open else -1.0])
        return np.asarray(self.expert.act({"observation/state": state}), np.float64)[0]

    def check_libero(self, obs: dict) -> None:
        """LIBERO inputs, as openpi's ``LiberoInputs`` and the checkpoint expect them."""
        for key in ("observation/image", "observation/wrist_image", "observation/state", "prompt"):
            if key not in obs:
                raise KeyError(key)
        for key in ("observation/image", "observation/wrist_image"):
            img = np.asarray(obs[key])
            if img.shape != (224, 224, 3) or img.dtype != np.uint8:
                raise ValueError(f"{key}: expected (224, 224, 3) uint8, got {img.shape} {img.dtype}")
        state = np.asarray(obs["observation/state"], np.float64)
        if state.shape != (8,):
            raise ValueError(
                f"observation/state: expected 8 values (pos, axis-angle, 2 fingers), got {state.shape}"
            )
        truth = self.env.robot_state().astype(np.float64)
        R = axisangle_to_matrix(state[3:6])
        fingers = np.array([truth[6] / 2, -truth[6] / 2])
        if (
            np.abs(state[:3] - truth[:3]).max() > 0.005
            or np.abs(R - euler_to_matrix(truth[3:6])).max() > 0.02
            or np.abs(state[6:] - fingers).max() > 0.005
        ):
            raise ValueError("observation/state does not match the robot (pos, axis-angle, fingers)")
        frame = self.env.last_frame.rgb
        seen = np.asarray(obs["observation/image"], np.float64)
        upright = resize_with_pad(np.ascontiguousarray(frame), 224).astype(np.float64)
        turned = resize_with_pad(np.ascontiguousarray(frame[::-1, ::-1]), 224).astype(np.float64)
        if np.mean((seen - turned) ** 2) > np.mean((seen - upright) ** 2):
            raise ValueError("observation/image is not rotated 180 degrees as LIBERO's training images are")


@dataclass
class StandIn:
    uri: str
    adapter: str
    stop: callable  # type: ignore[valid-type]
    requests: int = 0


def start_standin(name: str, env: TabletopEnv, latency_ms: float = 0.0, port: int = 0) -> StandIn:
    """Start the stand-in ``name`` on 127.0.0.1 (``port`` 0: a free one) in a daemon thread."""
    starters = {"openpi-libero": _start_openpi, "openvla-bridge": _start_openvla}
    if name not in starters:
        from vla_agent.errors import suggest

        raise ConfigError(f"unknown stand-in {name!r}{suggest(name, starters)}; valid: {', '.join(starters)}")
    cfg = ADAPTERS.get(name)[0]
    return starters[name](ExpertBehindConvention(env, cfg), latency_ms / 1000, port)


def _start_openpi(behind: ExpertBehindConvention, latency: float, port: int) -> StandIn:
    from websockets.sync.server import serve

    from vla_agent.vla import msgpack_numpy

    def health(connection, request):
        if request.path == "/healthz":
            return connection.respond(200, "OK\n")
        return None

    standin: StandIn

    def handler(ws) -> None:
        ws.send(msgpack_numpy.packb({}))  # openpi's LIBERO policies have empty metadata
        while True:
            try:
                obs = msgpack_numpy.unpackb(ws.recv())
            except Exception:  # closed
                return
            t0 = time.monotonic()
            try:
                behind.check_libero(obs)
                reply = {"actions": behind.chunk(str(obs["prompt"])).astype(np.float32)}
            except Exception:  # noqa: BLE001 - openpi's server: the traceback, then close
                ws.send(traceback.format_exc())
                ws.close(1011, "Internal server error. Traceback included in previous frame.")
                return
            time.sleep(latency)
            reply["server_timing"] = {"infer_ms": (time.monotonic() - t0) * 1000}
            standin.requests += 1
            ws.send(msgpack_numpy.packb(reply))

    server = serve(handler, "127.0.0.1", port, compression=None, max_size=None, process_request=health)
    threading.Thread(target=server.serve_forever, daemon=True, name="standin-openpi").start()
    port = server.socket.getsockname()[1]
    standin = StandIn(f"ws://127.0.0.1:{port}", "openpi-libero", server.shutdown)
    return standin


def _start_openvla(behind: ExpertBehindConvention, latency: float, port: int) -> StandIn:
    try:
        import json_numpy
    except ImportError:
        raise ConfigError('the OpenVLA stand-in uses json-numpy: pip install "vla-agent[standin]"') from None

    standin: StandIn

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's name
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            try:
                if self.path != "/act":
                    raise ValueError(f"no route {self.path}")
                payload = json_numpy.loads(body)
                image, instruction = payload["image"], payload["instruction"]
                if payload.get("unnorm_key") != "bridge_orig":
                    raise ValueError(f"no statistics for unnorm_key {payload.get('unnorm_key')!r}")
                if np.asarray(image).dtype != np.uint8 or np.asarray(image).shape[-1] != 3:
                    raise ValueError("image must be HxWx3 uint8")
                action = behind.chunk(str(instruction))[0]  # one 5 Hz Bridge step (two of our ticks)
                text = json_numpy.dumps(action)
            except Exception:  # noqa: BLE001 - deploy.py logs the traceback and answers "error"
                text = json.dumps("error")
            time.sleep(latency)
            standin.requests += 1
            data = text.encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
    threading.Thread(target=server.serve_forever, daemon=True, name="standin-openvla").start()
    standin = StandIn(
        f"openvla+http://127.0.0.1:{server.server_address[1]}", "openvla-bridge", server.shutdown
    )
    return standin
