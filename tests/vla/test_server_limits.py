"""One client cannot stall the policy server: bounded frames, objects, prompts and connections;
inputs and outputs checked; a client that goes away and comes back is reconnected."""

import threading
import time

import msgpack
import numpy as np
import pytest

from vla_agent.errors import PolicyUnavailable
from vla_agent.types import IMAGE, OBJECT_START, PROMPT, STATE, WRIST_IMAGE
from vla_agent.vla import msgpack_numpy
from vla_agent.vla.client import PolicyServerError, WebsocketClientPolicy, _connect
from vla_agent.vla.server import BackgroundServer, ServeConfig

INFER_S = 0.004  # the stand-in's inference time, about the shipped VLA's on 2 CPU cores


class StandIn:
    """A stand-in policy service: fixed-time inference, actions from the request's state."""

    metadata = {"action_horizon": 4, "action_dim": 7, "server": "stand-in"}

    def __init__(self, actions=None):
        self.actions = actions

    def infer(self, obs: dict) -> dict:
        time.sleep(INFER_S)
        actions = self.actions if self.actions is not None else np.zeros((4, 7))
        return {"actions": np.asarray(actions, float)}


def good_obs():
    return {
        IMAGE: np.zeros((128, 128, 3), np.uint8),
        WRIST_IMAGE: np.zeros((64, 64, 3), np.uint8),
        STATE: np.array([0.5, 0, 0.3, 0, 0, 0, 0.08], np.float32),
        PROMPT: "pick up the red block",
    }


@pytest.fixture()
def server():
    with BackgroundServer(ServeConfig(port=0, max_frame_bytes=2**20, max_connections=4), StandIn()) as srv:
        yield srv


def _raw(port):
    ws = _connect(f"ws://127.0.0.1:{port}", open_timeout=5, max_size=2**24, compression=None)
    ws.recv(timeout=5)  # metadata
    return ws


def test_hostile_frames_get_one_line_errors_fast(server):
    ws = _raw(server.port)
    bomb = msgpack.packb([{}] * 200_000)  # many empty maps: the decoder refuses at the limit
    t0 = time.perf_counter()
    ws.send(bomb)
    assert ws.recv(timeout=5).startswith("bad request")
    assert time.perf_counter() - t0 < 0.5
    ws.send(msgpack_numpy.packb({**good_obs(), PROMPT: "pick " * 5000}))
    assert "bad request" in ws.recv(timeout=5)
    ws.send(msgpack_numpy.packb({**good_obs(), OBJECT_START: np.array([1e38, 0.0, 0.0])}))
    assert "object_start" in ws.recv(timeout=5)
    ws.send(msgpack_numpy.packb({**good_obs(), STATE: np.full(7, np.inf, np.float32)}))
    assert "observation/state" in ws.recv(timeout=5)
    ws.send(msgpack_numpy.packb(good_obs()))
    assert isinstance(ws.recv(timeout=5), bytes)  # the same connection still serves
    ws.send(b"\0" * (2**20 + 10))  # over the frame limit: the server closes this connection
    with pytest.raises(Exception):  # noqa: B017 - websockets' ConnectionClosed
        ws.recv(timeout=5)
    client = WebsocketClientPolicy(f"ws://127.0.0.1:{server.port}")
    assert client.infer(good_obs())["actions"].shape == (4, 7)  # others are unaffected
    client.close()


def test_non_finite_or_out_of_range_actions_never_leave_the_server():
    bad = np.zeros((4, 7))
    bad[1, 2] = np.nan
    for actions in (bad, np.full((4, 7), 0.5)):
        with BackgroundServer(ServeConfig(port=0), StandIn(actions)) as srv:
            client = WebsocketClientPolicy(f"ws://127.0.0.1:{srv.port}")
            with pytest.raises(PolicyServerError, match="refusing"):
                client.infer(good_obs())
            client.close()


def test_connections_are_limited(server):
    held = [_raw(server.port) for _ in range(4)]
    with pytest.raises(PolicyServerError, match="503|refused"):
        WebsocketClientPolicy(f"ws://127.0.0.1:{server.port}")
    held.pop().close()
    time.sleep(0.2)
    WebsocketClientPolicy(f"ws://127.0.0.1:{server.port}").close()
    for ws in held:
        ws.close()


def _p99(client, n):
    lat = []
    for _ in range(n):
        t0 = time.perf_counter()
        client.infer(good_obs())
        lat.append(time.perf_counter() - t0)
    return float(np.percentile(lat, 99))


def test_a_flooding_client_does_not_stall_a_well_behaved_one(server):
    client = WebsocketClientPolicy(f"ws://127.0.0.1:{server.port}")
    _p99(client, 20)  # warm up
    idle = _p99(client, 150)
    stop = threading.Event()
    frames = [
        msgpack.packb([{}] * 200_000),
        msgpack_numpy.packb({**good_obs(), PROMPT: "x" * 100_000}),
        b"\xc1 garbage",
        msgpack_numpy.packb({**good_obs(), OBJECT_START: np.array([1e38, 0, 0])}),
    ]

    sent = [0]

    def flood():  # as fast as the server answers; cut off after 16 bad requests, come back
        while not stop.is_set():
            try:
                ws = _raw(server.port)
                while not stop.is_set():
                    ws.send(frames[sent[0] % len(frames)])
                    ws.recv(timeout=5)
                    sent[0] += 1
                ws.close()
            except Exception:  # noqa: BLE001 - disconnected by the server
                time.sleep(0.01)

    threads = [threading.Thread(target=flood) for _ in range(2)]
    for t in threads:
        t.start()
    time.sleep(0.2)
    flooded = _p99(client, 150)
    stop.set()
    for t in threads:
        t.join(10)
    client.close()
    print(f"well-behaved p99: idle {idle * 1000:.2f} ms, beside 2 flooding clients {flooded * 1000:.2f} ms")
    assert sent[0] > 0  # the flood ran (throttled: each bad request is answered later than the last)
    assert flooded < 2 * idle


def test_the_client_reconnects_when_the_server_comes_back():
    service = StandIn()
    with BackgroundServer(ServeConfig(port=0), service) as srv:
        port = srv.port
        client = WebsocketClientPolicy(f"ws://127.0.0.1:{port}", reconnect_s=10)
        client.infer(good_obs())
    restarted = threading.Event()

    def restart():
        time.sleep(0.5)  # the server is down meanwhile
        with BackgroundServer(ServeConfig(port=port), service):
            restarted.set()
            time.sleep(3)

    t = threading.Thread(target=restart)
    t.start()
    assert client.infer(good_obs())["actions"].shape == (4, 7)  # waited, reconnected, answered
    assert restarted.is_set() and client.reconnects == 1
    t.join()
    t0 = time.perf_counter()
    with pytest.raises(PolicyUnavailable, match="not back within"):
        client.reconnect_s = 1.0
        client.infer(good_obs())
    assert time.perf_counter() - t0 < 3
    client.close()


class Hangs(StandIn):
    def __init__(self):
        super().__init__()
        self.hang = threading.Event()

    def infer(self, obs: dict) -> dict:
        if self.hang.is_set():
            time.sleep(3)
        return super().infer(obs)


def test_a_hung_server_is_one_error_not_retries():
    service = Hangs()
    with BackgroundServer(ServeConfig(port=0), service) as srv:
        client = WebsocketClientPolicy(f"ws://127.0.0.1:{srv.port}", recv_timeout_s=0.5)
        client.infer(good_obs())
        service.hang.set()
        t0 = time.perf_counter()
        with pytest.raises(PolicyServerError, match="no reply within"):
            client.infer(good_obs())
        assert time.perf_counter() - t0 < 1.5  # one timeout, no retry
        assert client.ws is None  # dropped: a late reply is never taken for the next request
        client.close()


def test_a_client_that_keeps_sending_bad_requests_is_cut_off():
    with BackgroundServer(ServeConfig(port=0, max_bad_requests=3), StandIn()) as srv:
        ws = _raw(srv.port)
        t0 = time.perf_counter()
        for _ in range(3):
            ws.send(b"\xc1 garbage")
            assert ws.recv(timeout=5).startswith("bad request")
        assert time.perf_counter() - t0 > 0.05  # answered later and later (10, 20, 40 ms)
        ws.send(b"\xc1 garbage")
        with pytest.raises(Exception):  # noqa: B017 - websockets' ConnectionClosed (1008)
            ws.recv(timeout=5)
        client = WebsocketClientPolicy(f"ws://127.0.0.1:{srv.port}")  # others are still served
        assert client.infer(good_obs())["actions"].shape == (4, 7)
        client.close()


def test_a_server_traceback_reaches_the_user_as_its_last_line_and_ends_the_run(tmp_path):
    """openpi's server answers a failed inference with its whole traceback as a text frame and
    closes the connection: the run ends at once with one clear error (the traceback's last line),
    never retried or replanned against the closed socket."""
    import threading
    import traceback

    from websockets.sync.server import serve

    from vla_agent.agent.core.session import AgentConfig, Session
    from vla_agent.vla import msgpack_numpy

    def handler(ws):
        ws.send(msgpack_numpy.packb({"action_horizon": 4}))  # openpi: metadata first
        for _ in ws:
            try:
                raise ValueError("checkpoint expects 8-D state, got 7")
            except ValueError:
                ws.send(traceback.format_exc())
                ws.close()
                return

    with serve(handler, "127.0.0.1", 0) as server:
        port = server.socket.getsockname()[1]
        threading.Thread(target=server.serve_forever, daemon=True).start()
        cfg = AgentConfig(
            scene="red block, blue bowl", policy=f"ws://127.0.0.1:{port}", video=False, out=tmp_path
        )
        session = Session(cfg)
        try:
            session.reset()
            result = session.executor.run("pick up the red block")
        finally:
            session.close()
            server.shutdown()
    assert result.status == "error" and result.replans == 0
    assert "ValueError: checkpoint expects 8-D state, got 7" in result.reason
    assert "Traceback" not in result.reason and "\n" not in result.reason
    assert [o.attempts for o in result.outcomes] in ([], [1])
