"""msgpack with numpy arrays, wire-compatible with openpi's ``msgpack_numpy``: an array travels
as ``{b"__ndarray__": True, b"data": raw bytes, b"dtype": dtype.str, b"shape": shape}``.
Never pickle: object dtypes are refused on both ends."""

from __future__ import annotations

from typing import Any

import msgpack
import numpy as np


def _pack(obj: Any) -> Any:
    if isinstance(obj, np.ndarray):
        if obj.dtype.kind in "OVc":
            raise TypeError(f"refusing to send numpy dtype {obj.dtype} (object/void/complex)")
        return {
            b"__ndarray__": True,
            b"data": np.ascontiguousarray(obj).tobytes(),
            b"dtype": obj.dtype.str,
            b"shape": list(obj.shape),
        }
    if isinstance(obj, np.generic):
        return {b"__npgeneric__": True, b"data": obj.item(), b"dtype": obj.dtype.str}
    raise TypeError(f"cannot serialize {type(obj).__name__}")


def _get(obj: dict, key: str) -> Any:
    return obj[key.encode()] if key.encode() in obj else obj[key]


def _unpack(obj: dict) -> Any:
    if b"__ndarray__" in obj or "__ndarray__" in obj:
        dtype = np.dtype(_get(obj, "dtype"))
        if dtype.kind in "OVc":
            raise TypeError(f"refusing to decode numpy dtype {dtype}")
        shape = _get(obj, "shape")
        if not isinstance(shape, (list, tuple)) or not all(isinstance(n, int) and n >= 0 for n in shape):
            raise ValueError(f"bad array shape {shape!r}")
        return np.frombuffer(_get(obj, "data"), dtype=dtype).reshape(shape)
    if b"__npgeneric__" in obj or "__npgeneric__" in obj:
        return np.dtype(_get(obj, "dtype")).type(_get(obj, "data"))
    return obj


def packb(obj: Any) -> bytes:
    return msgpack.packb(obj, default=_pack, use_bin_type=True)


def unpackb(data: bytes, limits: dict[str, int] | None = None) -> Any:
    """Decode; ``limits`` (msgpack's ``max_map_len``, ``max_array_len``, ``max_str_len``,
    ``max_bin_len``) bound what a frame may hold, so a hostile frame fails fast."""
    return msgpack.unpackb(data, object_hook=_unpack, raw=False, strict_map_key=False, **(limits or {}))
