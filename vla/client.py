"""A websocket policy client (openpi protocol) with bounded waits, and a ``SkillPolicy`` that
drives it through an action-chunk broker."""

from __future__ import annotations

import contextlib
import time

import numpy as np

from vla_agent.errors import PolicyUnavailable
from vla_agent.types import STATE, Observation, Subgoal
from vla_agent.vla import msgpack_numpy
from vla_agent.vla.adapters import AdapterConfig, load_adapter
from vla_agent.vla.adapters.convention import AdapterError, Chunk, decode, encode
from vla_agent.vla.chunking import ChunkedPolicy, ChunkRunner
from vla_agent.vla.streaming import ChunkStream


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
    """``SkillPolicy`` over a policy server: our observation encoded for it and its chunks decoded
    by an adapter (``vla.adapters``; default: our own server's convention), executed one action
    per control tick by a ``ChunkStream`` (synchronous by default; ``chunks="async"`` asks for the
    next chunk while one executes; ``realtime`` makes latency cost control ticks in a dry run)."""

    def __init__(
        self,
        uri: str,
        api_key: str | None = None,
        execute: int | None = None,
        done_threshold: float = 0.5,
        adapter: str | AdapterConfig | None = None,
        chunks: str = "sync",
        realtime: bool = False,
        simulated: bool = True,
        open_width: float = 0.08,
        dt: float = 0.1,
        limits: tuple[float, float] = (0.04, 0.25),
        **timeouts,
    ):
        self.adapter = load_adapter(adapter)
        self.uri, self._api_key, self._timeouts = uri, api_key, timeouts
        self.client = self._client()
        self.runner = ChunkRunner(execute or self.adapter.execute, done_threshold)
        self.stream = ChunkStream(
            self.runner,
            chunks,
            realtime,
            simulated=simulated,
            open_width=open_width,
            connect=lambda: self._requester(self._client()),
            dt=dt,
            limits=limits,
        )
        self.subgoal: Subgoal | None = None
        self.latencies_ms: list[float] = []

    def _client(self):
        if self.adapter.transport == "openvla-rest":
            from vla_agent.vla.adapters.rest import RestClientPolicy

            return RestClientPolicy(self.uri, **self._timeouts)
        return WebsocketClientPolicy(self.uri, self._api_key, **self._timeouts)

    def reset(self, subgoal: Subgoal) -> None:
        self.subgoal = subgoal
        self.stream.reset()

    def _requester(self, client):
        def request(obs: Observation) -> Chunk:
            payload = encode(self.adapter, obs, self.subgoal.instruction, self.memory.start)
            t0 = time.perf_counter()
            reply = client.infer(payload)
            self.latencies_ms.append((time.perf_counter() - t0) * 1000)
            try:
                return decode(self.adapter, reply, np.asarray(obs[STATE], np.float64))
            except AdapterError as e:
                raise PolicyServerError(f"policy server {self.uri} sent {e}") from None

        return request

    def act(self, obs: Observation) -> np.ndarray:
        return self.stream.step(obs, self._requester(self.client))[None]

    def interrupt(self) -> None:
        """The shield changed an action: chunks planned before that are dropped (asynchronous)."""
        self.stream.interrupt()

    @property
    def idle_ticks(self) -> int:
        return self.stream.idle_ticks

    def close(self) -> None:
        self.stream.close()
        self.client.close()
