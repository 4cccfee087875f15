"""``vla-agent serve``: the VLA behind a websocket, speaking the openpi policy protocol.

On connect the server sends a metadata frame (action horizon and dim, action space, control rate,
image keys). Each request is an observation dict (``observation/image``, ``observation/state``,
``prompt``, optionally ``object_start``) and each reply ``{"actions": (H, 7), "done_prob": p,
"object_position": (3,), "server_timing": {"infer_ms"}}``. The server keeps no episode state: a
client that wants the policy's start memory (where the object was when the subgoal began) sends
back the ``object_position`` of its first replies as ``object_start``.
A malformed request gets a text error frame (what openpi's client raises on) and the connection
keeps serving. ``GET /healthz`` answers 200. Inference runs in a worker thread, off the event
loop. Binding beyond loopback requires an API key (``Authorization: Api-Key <key>``).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import hmac
import ipaddress
import logging
import threading
import time
from http import HTTPStatus
from pathlib import Path

import numpy as np
from pydantic import BaseModel, ConfigDict

from vla_agent.errors import ConfigError
from vla_agent.types import IMAGE, OBJECT_START, PROMPT, STATE, WRIST_IMAGE
from vla_agent.vla import msgpack_numpy

log = logging.getLogger(__name__)


class ServeConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    checkpoint: Path | None = None
    device: str = "cpu"
    host: str = "127.0.0.1"
    port: int = 8000
    api_key: str | None = None


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class PolicyService:
    """Stateless inference for one request at a time (a lock serializes the model)."""

    def __init__(self, checkpoint: Path | None, device: str):
        from vla_agent.vla.policy import VLAPolicy

        self.policy = VLAPolicy(checkpoint, device=device)
        self._lock = threading.Lock()
        cfg = self.policy.model.cfg
        self.metadata = {
            "action_horizon": cfg.horizon,
            "action_dim": 7,
            "control_hz": 10.0,
            "action_space": "ee_delta_base_frame[dx,dy,dz,droll,dpitch,dyaw,gripper(+1 open)]",
            "image_keys": [IMAGE, WRIST_IMAGE],
            "state_key": STATE,
            "image_size": cfg.image_size,
            "wrist_size": cfg.wrist_size,
            "server": "vla-agent",
        }

    def infer(self, obs: dict) -> dict:
        if not isinstance(obs, dict):
            raise ValueError("request must be a map of observation keys")
        missing = [k for k in (IMAGE, WRIST_IMAGE, STATE, PROMPT) if k not in obs]
        if missing:
            raise ValueError(f"request lacks {missing}")
        image, wrist, state, prompt = obs[IMAGE], obs[WRIST_IMAGE], obs[STATE], obs[PROMPT]
        for key, img, size in (
            (IMAGE, image, self.metadata["image_size"]),
            (WRIST_IMAGE, wrist, self.metadata["wrist_size"]),
        ):
            if not (isinstance(img, np.ndarray) and img.dtype == np.uint8 and img.shape == (size, size, 3)):
                raise ValueError(f"{key} must be a uint8 array of shape ({size}, {size}, 3)")
        state = np.asarray(state, dtype=np.float32)
        if state.shape != (7,) or not np.all(np.isfinite(state)):
            raise ValueError(f"{STATE} must be 7 finite numbers")
        if not isinstance(prompt, str) or not prompt.strip():
            raise ValueError(f"{PROMPT} must be a non-empty string")
        start = obs.get(OBJECT_START)
        if start is not None:
            start = np.asarray(start, dtype=np.float64)
            if start.shape != (3,) or not np.all(np.isfinite(start)):
                raise ValueError(f"{OBJECT_START} must be 3 finite numbers (metres)")
        from vla_agent.types import Subgoal

        t0 = time.perf_counter()
        with self._lock:
            if self.policy.subgoal is None or self.policy.subgoal.instruction != prompt:
                self.policy.reset(Subgoal("remote", {}, prompt))
            pred = self.policy.infer(image, state, wrist, start)
        return {
            "actions": pred.actions,
            "gripper_prob": pred.gripper_prob,
            "done_prob": pred.done_prob,
            "object_position": pred.object_position,
            "server_timing": {"infer_ms": (time.perf_counter() - t0) * 1000},
        }


async def serve_async(
    cfg: ServeConfig,
    service: PolicyService | None = None,
    ready: threading.Event | None = None,
    stop: asyncio.Event | None = None,
) -> None:
    import websockets
    from websockets.asyncio.server import serve

    if not is_loopback(cfg.host) and not cfg.api_key:
        raise ConfigError(
            f"binding to {cfg.host} (beyond loopback) needs an API key: --api-key or VLA_AGENT_API_KEY"
        )
    # One dedicated inference thread that also builds the model: torch CPU inference measured
    # 3x slower (6 ms vs 2 ms) in a thread other than the one that loaded the model.
    executor = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="vla-infer")
    loop = asyncio.get_running_loop()
    if service is None:
        service = await loop.run_in_executor(executor, PolicyService, cfg.checkpoint, cfg.device)
    packed_meta = msgpack_numpy.packb(service.metadata)

    def process_request(connection, request):
        if request.path == "/healthz":
            return connection.respond(HTTPStatus.OK, "OK\n")
        if cfg.api_key:
            got = request.headers.get("Authorization", "")
            if not hmac.compare_digest(got.encode(), f"Api-Key {cfg.api_key}".encode()):
                return connection.respond(HTTPStatus.UNAUTHORIZED, "missing or wrong API key\n")
        return None

    async def handler(ws):
        await ws.send(packed_meta)
        try:
            async for message in ws:
                try:
                    if isinstance(message, str):
                        raise ValueError("requests must be binary msgpack frames")
                    obs = msgpack_numpy.unpackb(message)
                    reply = await loop.run_in_executor(executor, service.infer, obs)
                    await ws.send(msgpack_numpy.packb(reply))
                except (ValueError, TypeError, KeyError) as e:
                    await ws.send(f"bad request: {e}")
                except Exception as e:  # noqa: BLE001 - report, keep serving
                    log.exception("inference failed")
                    await ws.send(f"inference error: {type(e).__name__}: {e}")
        except websockets.ConnectionClosed:
            pass

    async with serve(
        handler, cfg.host, cfg.port, process_request=process_request, max_size=2**24, compression=None
    ) as server:
        if ready is not None:
            ready.port = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]
            ready.set()
        await (stop.wait() if stop is not None else asyncio.get_running_loop().create_future())


def serve_forever(cfg: ServeConfig) -> None:
    asyncio.run(serve_async(cfg))


class BackgroundServer:
    """A server on a background thread (tests, notebooks); ``port=0`` picks a free port."""

    def __init__(self, cfg: ServeConfig, service: PolicyService | None = None):
        self.cfg, self.service = cfg, service
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.error: BaseException | None = None

    def _run(self):
        async def main():
            self._loop = asyncio.get_running_loop()
            self._stop = asyncio.Event()
            await serve_async(self.cfg, self.service, self._ready, self._stop)

        try:
            asyncio.run(main())
        except BaseException as e:  # noqa: BLE001
            self.error = e
            self._ready.set()

    def __enter__(self) -> BackgroundServer:
        self._thread.start()
        if not self._ready.wait(30) or self.error:
            raise RuntimeError(f"policy server did not start: {self.error}")
        self.port = self._ready.port  # type: ignore[attr-defined]
        return self

    def __exit__(self, *exc):
        if self._loop and self._stop:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)
