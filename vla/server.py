"""``vla-agent serve``: the VLA behind a websocket, speaking the openpi policy protocol.

On connect the server sends a metadata frame (action horizon and dim, action space, control rate,
image keys). Each request is an observation dict (``observation/image``, ``observation/state``,
``prompt``, optionally ``object_start``) and each reply ``{"actions": (H, 7), "done_prob": p,
"object_position": (3,), "server_timing": {"infer_ms"}}``. The server keeps no episode state: a
client that wants the policy's start memory (where the object was when the subgoal began) sends
back the ``object_position`` of its first replies as ``object_start``.
A malformed request gets a text error frame (what openpi's client raises on) and the connection
keeps serving. ``GET /healthz`` answers 200. Binding beyond loopback requires an API key
(``Authorization: Api-Key <key>``).

One client cannot stall the others: frames are bounded in bytes (``max_frame_bytes``), decoded
maps, arrays and strings in length, the prompt in characters, and connections in number (the
next one gets HTTP 503); a bad request is answered later the more of them come in a row, and a
client past ``max_bad_requests`` of them is disconnected; decoding runs in its own threads and
inference in one worker thread, both off the event loop; every input is checked (finite, in a
physical range) before inference and every output (finite actions within the action limits,
probabilities in [0, 1]) before it leaves the server.
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
from typing import Literal

import msgpack
import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from vla_agent.errors import ConfigError
from vla_agent.types import IMAGE, OBJECT_START, PROMPT, STATE, WRIST_IMAGE
from vla_agent.vla import msgpack_numpy

log = logging.getLogger(__name__)


class ServeConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    checkpoint: Path | None = None
    device: str = "cpu"
    quantize: Literal["none", "int8", "fp16"] = "none"
    lora: Path | None = None
    host: str = "127.0.0.1"
    port: int = 8000
    api_key: str | None = None
    max_frame_bytes: int = Field(4 * 2**20, ge=2**16, description="largest request frame")
    max_prompt_chars: int = Field(1000, ge=1)
    max_connections: int = Field(16, ge=1)
    max_bad_requests: int = Field(
        16, ge=1, description="bad requests in a row before the connection is closed (each answered later)"
    )
    batch_window_ms: float = Field(
        2.0,
        ge=0,
        description="while other clients are connected, wait this long for their requests to batch with "
        "(0: every request alone)",
    )
    max_batch: int = Field(8, ge=1, description="most requests in one forward pass")
    latency_ms: float = Field(
        0.0, ge=0, le=10_000, description="added before every reply: emulates a remote server (benchmarks)"
    )


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class PolicyService:
    """Stateless inference for one request at a time (a lock serializes the model)."""

    def __init__(
        self, checkpoint: Path | None, device: str, quantize: str = "none", lora: Path | None = None
    ):
        from vla_agent.vla.policy import VLAPolicy

        self.policy = VLAPolicy(checkpoint, device=device, quantize=quantize, lora=lora)
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
            "state_dim": 7,
            # what the model sees; other sizes are resized with padding (openpi's convention),
            # HWC or CHW, uint8 or float in [0, 1]
            "image_shapes": {
                IMAGE: [cfg.image_size, cfg.image_size, 3],
                WRIST_IMAGE: [cfg.wrist_size] * 2 + [3],
            },
            "image_dtype": "uint8",
            "server": "vla-agent",
        }

    def infer(self, obs: dict) -> dict:
        if not isinstance(obs, dict):
            raise ValueError("request must be a map of observation keys")
        missing = [k for k in (IMAGE, WRIST_IMAGE, STATE, PROMPT) if k not in obs]
        if missing:
            raise ValueError(f"request lacks {missing}")
        image, wrist, state, prompt = obs[IMAGE], obs[WRIST_IMAGE], obs[STATE], obs[PROMPT]
        image = as_model_image(IMAGE, image, self.metadata["image_size"])
        wrist = as_model_image(WRIST_IMAGE, wrist, self.metadata["wrist_size"])
        state = np.asarray(state, dtype=np.float32)
        start = obs.get(OBJECT_START)
        if start is not None:
            start = np.asarray(start, dtype=np.float64)
        from vla_agent.types import Subgoal

        t0 = time.perf_counter()
        with self._lock:
            if self.policy.subgoal is None or self.policy.subgoal.instruction != prompt:
                self.policy.reset(Subgoal("remote", {}, prompt))
            pred = self.policy.infer(image, state, wrist, start)
        return _reply(pred, (time.perf_counter() - t0) * 1000, 1)

    def infer_batch(self, requests: list[dict]) -> list[dict]:
        """Several checked requests in one forward pass (``VLAPolicy.infer_batch``)."""
        rows = []
        for obs in requests:
            start = obs.get(OBJECT_START)
            rows.append(
                (
                    as_model_image(IMAGE, obs[IMAGE], self.metadata["image_size"]),
                    np.asarray(obs[STATE], dtype=np.float32),
                    as_model_image(WRIST_IMAGE, obs[WRIST_IMAGE], self.metadata["wrist_size"]),
                    None if start is None else np.asarray(start, dtype=np.float64),
                    obs[PROMPT],
                )
            )
        t0 = time.perf_counter()
        with self._lock:
            preds = self.policy.infer_batch(rows)
        ms = (time.perf_counter() - t0) * 1000
        return [_reply(p, ms, len(rows)) for p in preds]


def _reply(pred, infer_ms: float, batch: int) -> dict:
    return {
        "actions": pred.actions,
        "gripper_prob": pred.gripper_prob,
        "done_prob": pred.done_prob,
        # a list, not an array: openpi's ActionChunkBroker slices every array leaf of a reply
        # by the step in the chunk, which a (3,) position would not survive past step 3
        "object_position": [float(x) for x in pred.object_position],
        "server_timing": {"infer_ms": infer_ms, "batch": batch},
    }


def as_model_image(key: str, img, size: int) -> np.ndarray:
    """An (H, W, 3) or (3, H, W) image, uint8 or float in [0, 1], as the model's (size, size, 3)
    uint8: resized to fit with its aspect ratio kept and padded with black (openpi's
    resize-with-pad), so a 224 px camera or a 640x480 one serves as well as a 128 px one."""
    if not isinstance(img, np.ndarray) or img.ndim != 3:
        raise ValueError(f"{key} must be a uint8 array of shape (H, W, 3)")
    if img.shape[0] == 3 and img.shape[2] != 3:
        img = np.transpose(img, (1, 2, 0))  # CHW -> HWC
    if img.shape[2] != 3 or min(img.shape[:2]) < 8:
        raise ValueError(f"{key} must be a uint8 array of shape (H, W, 3), got {img.shape}")
    if img.dtype != np.uint8:
        if img.dtype.kind != "f" or not np.all(np.isfinite(img)) or img.min() < 0 or img.max() > 1:
            raise ValueError(f"{key} must be a uint8 array of shape (H, W, 3), or floats in [0, 1]")
        img = np.round(img * 255).astype(np.uint8)
    h, w = img.shape[:2]
    if (h, w) == (size, size):
        return img
    from PIL import Image

    scale = size / max(h, w)
    nh, nw = max(1, round(h * scale)), max(1, round(w * scale))
    resized = np.asarray(Image.fromarray(img).resize((nw, nh), Image.BILINEAR))
    out = np.zeros((size, size, 3), np.uint8)
    top, left = (size - nh) // 2, (size - nw) // 2
    out[top : top + nh, left : left + nw] = resized
    return out


ACTION_LIMITS = np.array([0.04] * 3 + [0.25] * 3 + [1.0])  # the sim's per-step limits (EnvConfig)
STATE_RANGE = np.array([2.0, 2.0, 2.0, 7.0, 7.0, 7.0, 0.2])  # metres, radians, gripper width


def _finite_in(name: str, value, shape: tuple[int, ...], bound) -> None:
    try:
        a = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError, OverflowError):
        raise ValueError(f"{name} must be numbers") from None
    if a.shape != shape or not np.all(np.isfinite(a)) or np.any(np.abs(a) > bound):
        raise ValueError(f"{name} must be {shape} finite numbers within +-{np.max(bound):g}")


def check_request(obs: dict, max_prompt_chars: int) -> None:
    """Refuse (ValueError, one line) what the policy must never see: a state or object position
    that is not finite or not physical, an over-long prompt."""
    if STATE in obs:
        _finite_in(STATE, obs[STATE], (7,), STATE_RANGE)
    if obs.get(OBJECT_START) is not None:
        _finite_in(OBJECT_START, obs[OBJECT_START], (3,), 2.0)
    prompt = obs.get(PROMPT)
    if PROMPT in obs and not (isinstance(prompt, str) and prompt.strip()):
        raise ValueError(f"{PROMPT} must be a non-empty string")
    if isinstance(prompt, str) and len(prompt) > max_prompt_chars:
        raise ValueError(f"{PROMPT} has {len(prompt)} characters; the limit is {max_prompt_chars}")


def check_reply(reply: dict) -> None:
    """Nothing non-finite or out of range leaves the server (a robot behind openpi's client would
    execute it)."""
    actions = np.asarray(reply["actions"], dtype=np.float64)
    if actions.ndim != 2 or actions.shape[1] != 7 or not np.all(np.isfinite(actions)):
        raise RuntimeError("the policy produced non-finite or malformed actions; refusing to send them")
    if np.any(np.abs(actions) > ACTION_LIMITS + 1e-6):
        raise RuntimeError("the policy produced actions beyond the per-step limits; refusing to send them")
    for key in ("gripper_prob", "done_prob"):
        if key in reply:
            p = np.asarray(reply[key], dtype=np.float64)
            if not np.all(np.isfinite(p)) or np.any((p < 0) | (p > 1)):
                raise RuntimeError(f"the policy produced an invalid {key}; refusing to send it")
    where = reply.get("object_position")
    if where is not None and not np.all(np.isfinite(np.asarray(where, dtype=np.float64))):
        raise RuntimeError("the policy produced a non-finite object_position; refusing to send it")


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
        service = await loop.run_in_executor(
            executor, PolicyService, cfg.checkpoint, cfg.device, cfg.quantize, cfg.lora
        )
    packed_meta = msgpack_numpy.packb(service.metadata)
    # Decoding has threads of its own: a hostile frame never waits in front of inference, and
    # never runs on the event loop that serves everyone else.
    decoder = concurrent.futures.ThreadPoolExecutor(max_workers=2, thread_name_prefix="vla-decode")
    limits = {
        "max_map_len": 64,
        "max_array_len": 64,
        "max_str_len": 4 * cfg.max_prompt_chars + 64,
        "max_bin_len": cfg.max_frame_bytes,
    }
    infer = service.infer
    open_connections = 0

    def process_request(connection, request):
        if request.path == "/healthz":
            return connection.respond(HTTPStatus.OK, "OK\n")
        if cfg.api_key:
            got = request.headers.get("Authorization", "")
            if not hmac.compare_digest(got.encode(), f"Api-Key {cfg.api_key}".encode()):
                return connection.respond(HTTPStatus.UNAUTHORIZED, "missing or wrong API key\n")
        if open_connections >= cfg.max_connections:
            return connection.respond(
                HTTPStatus.SERVICE_UNAVAILABLE, f"at most {cfg.max_connections} connections\n"
            )
        return None

    def run_batch(batch: list[dict]) -> list:
        """Replies (or the error of each bad request) for requests that arrived together: the
        server checks what goes in and out, whatever service it is handed."""
        out: list = [None] * len(batch)
        good = []
        for i, obs in enumerate(batch):
            try:
                check_request(obs, cfg.max_prompt_chars)
                good.append(i)
            except (ValueError, TypeError, KeyError) as e:
                out[i] = e
        if len(good) > 1 and hasattr(service, "infer_batch"):
            replies = service.infer_batch([batch[i] for i in good])
        else:
            replies = [infer(batch[i]) for i in good]
        for i, reply in zip(good, replies):
            check_reply(reply)
            out[i] = reply
        return out

    queue: asyncio.Queue = asyncio.Queue()

    async def batcher():
        """Requests that arrive within ``batch_window_ms`` of each other (while several clients
        are connected) go through the model together; each client gets its own reply."""
        while True:
            items = [await queue.get()]
            window = cfg.batch_window_ms / 1000 if open_connections > 1 else 0.0
            deadline = loop.time() + window
            while len(items) < cfg.max_batch:
                try:
                    items.append(
                        queue.get_nowait()
                        if window <= 0
                        else await asyncio.wait_for(queue.get(), deadline - loop.time())
                    )
                except (asyncio.QueueEmpty, TimeoutError, asyncio.TimeoutError):
                    break
                if loop.time() >= deadline:
                    break
            try:
                replies = await loop.run_in_executor(executor, run_batch, [obs for obs, _ in items])
            except Exception as e:  # noqa: BLE001 - every waiting client hears of it
                replies = [e] * len(items)
            for (_, fut), reply in zip(items, replies):
                if not fut.done():
                    fut.set_result(reply)

    batching = asyncio.create_task(batcher())

    async def handler(ws):
        nonlocal open_connections
        open_connections += 1
        strikes = 0  # bad requests in a row: each answered later, too many and the client is cut off
        try:
            await ws.send(packed_meta)
            async for message in ws:
                try:
                    if isinstance(message, str):
                        raise ValueError("requests must be binary msgpack frames")
                    obs = await loop.run_in_executor(decoder, msgpack_numpy.unpackb, message, limits)
                    if not isinstance(obs, dict):
                        raise ValueError("request must be a map of observation keys")
                    fut = loop.create_future()
                    await queue.put((obs, fut))
                    reply = await fut
                    if isinstance(reply, Exception):
                        raise reply
                    if cfg.latency_ms:
                        await asyncio.sleep(cfg.latency_ms / 1000)
                    await ws.send(msgpack_numpy.packb(reply))
                    strikes = 0
                except (ValueError, TypeError, KeyError, msgpack.ExtraData, msgpack.FormatError) as e:
                    strikes += 1
                    if strikes > cfg.max_bad_requests:
                        await ws.close(1008, "too many bad requests")
                        break
                    await asyncio.sleep(min(0.005 * 2**strikes, 1.0))  # a flooding client slows itself
                    await ws.send(f"bad request: {str(e)[:200]}")
                except Exception as e:  # noqa: BLE001 - report, keep serving
                    log.exception("inference failed")
                    await ws.send(f"inference error: {type(e).__name__}: {str(e)[:200]}")
        except websockets.ConnectionClosed:
            pass
        finally:
            open_connections -= 1

    async with serve(
        handler,
        cfg.host,
        cfg.port,
        process_request=process_request,
        max_size=cfg.max_frame_bytes,
        compression=None,
    ) as server:
        if ready is not None:
            ready.port = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]
            ready.set()
        try:
            await (stop.wait() if stop is not None else asyncio.get_running_loop().create_future())
        finally:
            batching.cancel()


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
