"""A websocket policy client (openpi protocol) with bounded waits, and a ``SkillPolicy`` that
drives it through an action-chunk broker."""

from __future__ import annotations

import contextlib
import time
from collections import deque

import numpy as np

from vla_agent.errors import PolicyUnavailable
from vla_agent.types import IMAGE, OBJECT_START, PROMPT, STATE, WRIST_IMAGE, Observation, Subgoal
from vla_agent.vla import msgpack_numpy
from vla_agent.vla.chunking import ChunkedPolicy, ChunkRunner


class PolicyServerError(PolicyUnavailable):
    """The policy server is unreachable, too slow, or answered with an error."""


class PolicyServerRefused(PolicyServerError):
    """The server answered the handshake with a refusal (a wrong API key, no room): retrying is futile."""


def _connect(uri: str, **kwargs):
    """websockets' sync connect, direct (no auto-reconnect wrapper) and never through a proxy."""
    import inspect

    from websockets.sync.client import connect

    params = inspect.signature(connect).parameters
    if "legacy" in params:  # websockets >= 17: a plain connection, not the reconnecting iterator
        kwargs["legacy"] = True
    if "proxy" in params:
        kwargs["proxy"] = None
    return connect(uri, **kwargs)


class WebsocketClientPolicy:
    """``infer(obs) -> {"actions": (H, D), ...}`` against a remote server.

    Every wait is bounded. A connection that drops (the server restarted) is opened again with
    exponential backoff for at most ``reconnect_s`` and the request sent once more; a server that
    does not answer within ``recv_timeout_s`` is an error at once (no retries against a hung
    server), and the connection is dropped so that a late reply is never taken for the next one.
    """

    def __init__(
        self,
        uri: str,
        api_key: str | None = None,
        connect_timeout_s: float = 5.0,
        recv_timeout_s: float = 10.0,
        reconnect_s: float = 10.0,
    ):
        self.uri, self.recv_timeout_s, self.reconnect_s = uri, recv_timeout_s, reconnect_s
        self.connect_timeout_s = connect_timeout_s
        self._headers = {"Authorization": f"Api-Key {api_key}"} if api_key else None
        self.ws = None
        self.reconnects = 0
        self.metadata = self._open()

    def _open(self) -> dict:
        uri, timeout = self.uri, self.connect_timeout_s
        try:
            self.ws = _connect(
                uri,
                open_timeout=timeout,
                additional_headers=self._headers,
                max_size=2**24,
                compression=None,
            )
            return msgpack_numpy.unpackb(self.ws.recv(timeout=timeout))
        except TimeoutError:
            raise PolicyServerError(f"policy server {uri}: no answer within {timeout:.1f} s") from None
        except OSError as e:
            raise PolicyServerError(f"policy server {uri} is unreachable: {e.strerror or e}") from None
        except Exception as e:  # websockets handshake errors (401, bad status)
            raise PolicyServerRefused(f"policy server {uri} refused the connection: {e}") from None

    def _reopen(self) -> None:
        """Connect again with exponential backoff, for at most ``reconnect_s``."""
        self._drop()
        deadline, delay = time.monotonic() + self.reconnect_s, 0.1
        while True:
            try:
                self.metadata = self._open()
                self.reconnects += 1
                return
            except PolicyServerError as e:
                if isinstance(e, PolicyServerRefused) or time.monotonic() + delay > deadline:
                    raise PolicyServerError(
                        f"policy server {self.uri}: connection lost and not back within "
                        f"{self.reconnect_s:.0f} s ({e})"
                    ) from None
            time.sleep(delay)
            delay = min(2 * delay, 2.0)

    def _drop(self) -> None:
        if self.ws is not None:
            with contextlib.suppress(Exception):  # closing a dead connection
                self.ws.close()
            self.ws = None

    def infer(self, obs: dict) -> dict:
        packed = msgpack_numpy.packb(obs)
        for attempt in (0, 1):
            if self.ws is None:
                self._reopen()
            try:
                self.ws.send(packed)
                reply = self.ws.recv(timeout=self.recv_timeout_s)
                break
            except TimeoutError:
                self._drop()
                raise PolicyServerError(
                    f"policy server {self.uri}: no reply within {self.recv_timeout_s:.1f} s"
                ) from None
            except Exception as e:  # the connection closed under us: reconnect once, send again
                self._drop()
                if attempt:
                    raise PolicyServerError(f"policy server {self.uri}: connection lost ({e})") from None
        if isinstance(reply, str):  # the server's error; openpi's sends its whole traceback
            raise PolicyServerError(f"policy server {self.uri} failed: {server_error(reply)}")
        return msgpack_numpy.unpackb(reply)

    def close(self) -> None:
        self._drop()


def server_error(text: str) -> str:
    """The line of a server's error text that says what went wrong: a traceback's last line
    (``ValueError: ...``), not its header."""
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    if not lines:
        return "an empty error message"
    if lines[0].startswith("Traceback"):
        return lines[-1][:300]
    return lines[0][:300]


class RemotePolicy(ChunkedPolicy):
    """``SkillPolicy`` over a policy server. The broker hands out one action per ``act`` from the
    last chunk and drops queued actions when the subgoal changes."""

    def __init__(
        self, uri: str, api_key: str | None = None, execute: int = 2, done_threshold: float = 0.5, **timeouts
    ):
        self.client = WebsocketClientPolicy(uri, api_key, **timeouts)
        self.runner = ChunkRunner(execute, done_threshold)
        self.queue: deque[np.ndarray] = deque()
        self.subgoal: Subgoal | None = None
        self.latencies_ms: list[float] = []

    def reset(self, subgoal: Subgoal) -> None:
        self.subgoal = subgoal
        self.queue.clear()
        self.runner.reset()

    def act(self, obs: Observation) -> np.ndarray:
        if not self.queue:
            t0 = time.perf_counter()
            request = {
                IMAGE: obs[IMAGE],
                WRIST_IMAGE: obs[WRIST_IMAGE],
                STATE: np.asarray(obs[STATE], np.float32),
                PROMPT: self.subgoal.instruction,
            }
            if self.memory.start is not None:
                request[OBJECT_START] = self.memory.start
            reply = self.client.infer(request)
            self.latencies_ms.append((time.perf_counter() - t0) * 1000)
            actions = np.array(reply["actions"], np.float64)  # a writable copy
            if actions.ndim != 2 or actions.shape[1] != 7 or not np.all(np.isfinite(actions)):
                raise PolicyServerError(f"policy server sent malformed actions of shape {actions.shape}")
            # Servers that send only the +/-1 gripper (openpi-style) still ensemble: +1 -> P(open) = 1.
            p_open = np.asarray(reply.get("gripper_prob", (actions[:, 6] + 1) / 2), np.float64)
            if p_open.shape != (len(actions),) or not np.all(np.isfinite(p_open)):
                raise PolicyServerError(f"policy server sent malformed gripper_prob of shape {p_open.shape}")
            where = reply.get("object_position")  # servers without it (openpi) just give no memory
            if where is not None:
                where = np.asarray(where, np.float64)
                if where.shape != (3,):
                    raise PolicyServerError(f"policy server sent object_position of shape {where.shape}")
            done_prob = reply.get("done_prob", 0.0)
            self.queue.extend(self.runner.take(actions, p_open, done_prob, where, obs[STATE][:3]))
        return self.queue.popleft()[None]
