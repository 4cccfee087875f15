"""OpenVLA's REST protocol (``vla-scripts/deploy.py``): ``POST /act`` with a JSON body whose numpy
arrays are json-numpy objects (``{"__numpy__": base64, "dtype": descr, "shape": [...]}``); the
reply is the action array, encoded the same way, or the JSON string ``"error"``.

Our own small codec (the json-numpy format is four lines) so that the client needs no extra
package; the tests check it against the real ``json_numpy``.
"""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.request

import numpy as np
from numpy.lib.format import descr_to_dtype, dtype_to_descr

from vla_agent.vla.client import PolicyServerError


def _default(o):
    if isinstance(o, (np.ndarray, np.generic)):
        a = np.ascontiguousarray(o)
        return {
            "__numpy__": base64.b64encode(a.tobytes()).decode(),
            "dtype": dtype_to_descr(a.dtype),
            "shape": a.shape,
        }
    raise TypeError(f"Object of type {type(o).__name__} is not JSON serializable")


def _hook(d: dict):
    if "__numpy__" in d:
        a = np.frombuffer(base64.b64decode(d["__numpy__"]), descr_to_dtype(d["dtype"]))
        return a.reshape(d["shape"]) if d["shape"] else a[0]
    return d


def dumps(obj) -> str:
    return json.dumps(obj, default=_default)


def loads(text: str | bytes):
    return json.loads(text, object_hook=_hook)


class RestClientPolicy:
    """``infer(request) -> reply`` against an OpenVLA-style ``/act`` endpoint; every wait bounded,
    never through a proxy."""

    def __init__(self, uri: str, timeout_s: float = 10.0, **_):
        base = uri.split("+", 1)[1] if "+" in uri.split("://", 1)[0] else uri  # openvla+http://h:p
        self.uri = base.rstrip("/")
        self.url = self.uri + "/act"
        self.timeout_s = timeout_s
        self.metadata: dict = {}
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def infer(self, request: dict):
        body = dumps(request).encode()
        req = urllib.request.Request(self.url, body, {"Content-Type": "application/json"}, method="POST")
        try:
            with self._opener.open(req, timeout=self.timeout_s) as resp:
                text = resp.read()
        except TimeoutError:
            raise PolicyServerError(
                f"policy server {self.uri}: no reply within {self.timeout_s:.1f} s"
            ) from None
        except urllib.error.HTTPError as e:
            raise PolicyServerError(f"policy server {self.uri} answered HTTP {e.code}") from None
        except (urllib.error.URLError, OSError) as e:
            reason = getattr(e, "reason", e)
            raise PolicyServerError(f"policy server {self.uri} is unreachable: {reason}") from None
        try:
            reply = loads(text)
        except (ValueError, KeyError) as e:
            raise PolicyServerError(
                f"policy server {self.uri} sent a reply that is not json-numpy: {e}"
            ) from None
        if isinstance(reply, str):  # deploy.py answers "error" and logs the traceback
            raise PolicyServerError(f"policy server {self.uri} failed on the request ({reply!r})")
        return reply

    def close(self) -> None:
        pass
