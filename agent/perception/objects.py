"""Object localization from RGB-D pixels, for the success detector and the planner's scene.

The same code runs on simulated and RealSense frames: it reads only the colour image, metric depth
aligned to it, the camera intrinsics/extrinsics (a calibration) and proprioception (end-effector
position, gripper width). It never reads simulator state (no segmentation buffer, no poses).

    depth + K + T_cam -> base-frame points -> keep points above the table, inside the work area,
    outside the robot's hand -> per-pixel colour class (nearest HSV prototype among the colours
    expected in the scene) -> connected components -> per-object position (blocks: centre of the
    visible top face; bowls/plates: centre of the footprint) -> ``WorldState`` -> the same
    predicate code the simulator's judge uses (``sim.predicates``), on estimated positions.

Objects of the same colour and kind are interchangeable to a camera: their names are kept by
tracking (nearest previous position), which is all the detector needs within one command.
"""

from __future__ import annotations

import colorsys
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from vla_agent.sim.camera import pixel_rays
from vla_agent.sim.catalog import BLOCK_SIZE, COLORS, closed_on_block
from vla_agent.sim.predicates import ObjectState, WorldState
from vla_agent.types import DEPTH, IMAGE, STATE, Observation, SceneObject

# Where objects can be (base frame, metres): a margin around the table's work area.
AREA_X = (0.20, 0.85)
AREA_Y = (-0.40, 0.40)
AREA_Z = (0.006, 0.18)  # above the table (depth noise margin), below a 4-block tower's top
HAND_RADIUS = 0.12  # points this close to the tool axis: above the fingertips the robot's wrist and
# hand, below them possibly a held block (allowed above AREA_Z's top)
CONTAINER_EXTENT = 0.085  # footprint (m) above which a component is a bowl or plate, not a block
MIN_PIXELS = 4

# Rendered/observed appearance of each catalogue colour: HSV hue (deg), saturation, value. Derived
# from the catalogue albedo; value is scaled by a typical shading factor.
SHADING = 0.72


def _prototype(rgb: tuple[float, float, float]) -> tuple[float, float, float]:
    h, s, v = colorsys.rgb_to_hsv(*rgb)
    return h * 360.0, s, v * SHADING


PROTOTYPES: dict[str, tuple[float, float, float]] = {c: _prototype(rgb) for c, rgb in COLORS.items()}


@dataclass(frozen=True)
class CameraModel:
    """Pinhole intrinsics ``K`` (3x3) and the camera-to-base transform ``T`` (4x4, OpenCV axes)."""

    K: np.ndarray
    T: np.ndarray


def hsv_image(rgb: np.ndarray) -> np.ndarray:
    """(H,W,3) uint8 RGB -> (H,W,3) float hue in degrees, saturation, value (vectorized)."""
    x = rgb.astype(np.float32) / 255.0
    mx, mn = x.max(-1), x.min(-1)
    d = mx - mn
    s = np.where(mx > 1e-6, d / np.maximum(mx, 1e-6), 0.0)
    r, g, b = x[..., 0], x[..., 1], x[..., 2]
    dd = np.maximum(d, 1e-6)
    h = np.where(mx == r, ((g - b) / dd) % 6, np.where(mx == g, (b - r) / dd + 2, (r - g) / dd + 4))
    h = np.where(d > 1e-6, h * 60.0, 0.0)
    return np.stack([h, s, mx], axis=-1)


def classify_colors(hsv: np.ndarray, colors: Sequence[str], max_dist: float = 2.5) -> np.ndarray:
    """Index into ``colors`` of the nearest prototype per pixel, -1 where none is near."""
    if not colors:
        return np.full(hsv.shape[:-1], -1, np.int32)
    h, s, v = hsv[..., 0], hsv[..., 1], hsv[..., 2]
    dists = []
    for c in colors:
        ph, ps, pv = PROTOTYPES[c]
        ds = (s - ps) / 0.2
        dv = (v - pv) / 0.28
        if ps < 0.2:  # achromatic: hue carries no information
            d2 = ds**2 + dv**2
        else:
            dh = np.abs((h - ph + 180.0) % 360.0 - 180.0) / 14.0
            d2 = dh**2 + ds**2 + dv**2
        dists.append(d2)
    d = np.stack(dists, axis=-1)
    idx = d.argmin(-1).astype(np.int32)
    return np.where(d.min(-1) <= max_dist**2, idx, -1)


_EIGHT = np.ones((3, 3))  # pixels touching by a corner are connected
_COLOR_CACHE_MAX = 1 << 18  # distinct colours remembered by a Perception


def _in_area(p: np.ndarray) -> np.ndarray:
    """Which base-frame points (N, 3) lie in the work area, above the table."""
    x, y, z = p[:, 0], p[:, 1], p[:, 2]
    return (x > AREA_X[0]) & (x < AREA_X[1]) & (y > AREA_Y[0]) & (y < AREA_Y[1]) & (z > AREA_Z[0])


def _median(a: np.ndarray) -> np.ndarray:
    """``np.median(a, axis=0)`` (the mean of the two middle values for an even count), without its
    per-call overhead."""
    a = np.sort(a, axis=0)
    n = len(a)
    return a[n // 2] if n % 2 else (a[n // 2 - 1] + a[n // 2]) / 2


def _percentiles(a: np.ndarray, qs: Sequence[float]) -> list[np.ndarray]:
    """``np.percentile(a, q, axis=0)`` for each q (its default linear interpolation) of ``a``
    already sorted along axis 0, without its per-call overhead: two reads per q."""
    n = len(a)
    out = []
    for q in qs:
        pos = q / 100 * (n - 1)
        i = int(np.floor(pos))
        j = min(i + 1, n - 1)
        out.append(a[i] + (a[j] - a[i]) * (pos - i))
    return out


@dataclass
class Detection:
    color: str
    kind: str  # "block" or "container" (bowl or plate: told apart by the expected scene)
    position: np.ndarray  # (3,) base frame; blocks: centre; containers: base centre on the table
    pixels: int


class Perception:
    """Locates the expected objects in RGB-D frames and builds a ``WorldState`` from pixels."""

    def __init__(self, objects: Sequence[SceneObject], camera: CameraModel):
        self.objects = list(objects)
        self.camera = camera
        self.colors = sorted({o.color for o in self.objects})
        self.last: dict[str, np.ndarray] = {}
        self._reference: dict[str, np.ndarray] = {}
        # The block the fingers closed on ("" when they closed on none), None while open.
        self.grasped: str | None = None
        self.seen: dict[str, int] = {}  # name -> pixels, for the objects the last frame showed
        self._window: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
        self._color_cache = (np.zeros(0, np.uint32), np.zeros(0, np.int32))  # colour code -> class

    # ------------------------------------------------------------------ pixels -> detections
    def detect(self, obs: Observation) -> list[Detection]:
        depth = np.asarray(obs[DEPTH], np.float32)
        rgb = np.asarray(obs[IMAGE])
        h, w = depth.shape
        if rgb.shape[:2] != depth.shape:
            raise ValueError(f"colour {rgb.shape[:2]} and depth {depth.shape} must be aligned")
        # Only the pixels in the work area are deprojected: a pixel's depth range that lands in
        # it is known from its ray (a fixed camera), so two comparisons per pixel find them.
        rays, near, far = self._depth_window(h, w)
        sel = np.flatnonzero((depth > near) & (depth < far))
        p = self.camera.T[:3, 3] + depth.reshape(-1)[sel, None] * rays[sel]
        inside = _in_area(p)  # the window is a hair wide: the exact test on its points
        sel, p = sel[inside], p[inside]
        state = np.asarray(obs[STATE], np.float64)
        ee = state[:3]
        near_hand = np.hypot(p[:, 0] - ee[0], p[:, 1] - ee[1]) < HAND_RADIUS
        holding = closed_on_block(state[6])
        # Near the hand only a held block may rise above the fingertips; an open hand holds nothing.
        hand_top = ee[2] + (BLOCK_SIZE / 2 + 0.006 if holding else -0.01)
        keep = np.where(near_hand, p[:, 2] < hand_top, p[:, 2] < AREA_Z[1])
        sel, p = sel[keep], p[keep]
        cls = self._classes(rgb.reshape(-1, 3)[sel])
        out: list[Detection] = []
        points: list[np.ndarray] = []
        for color, comp in self._components(sel, p, cls, w):
            out.append(self._describe(color, comp, len(comp)))
            points.append(comp)
        # A block under another one shows the camera only its sides: the highest of those points
        # are the top edge of its near faces, not its top face, and their centre lies towards
        # the camera (1-2 cm: enough to miss a good stack). Describe it from its sides instead.
        for i, d in enumerate(out):
            if d.kind == "block" and any(
                u.kind == "block"
                and u.position[2] > d.position[2] + BLOCK_SIZE / 2
                and np.linalg.norm(u.position[:2] - d.position[:2]) < BLOCK_SIZE
                for u in out
            ):
                out[i] = self._describe(d.color, points[i], d.pixels, covered=True)
        return out

    def _components(self, sel: np.ndarray, p: np.ndarray, cls: np.ndarray, w: int):
        """(colour, points) of each 8-connected component of one colour with at least MIN_PIXELS
        pixels: by colour, then in raster order, its points in raster order. ``sel``: flat pixel
        indices in raster order, ``p``: their points, ``cls``: their colour indices. One labelling
        for every colour: each colour's bounding box, stacked under the previous one with an empty
        row between, on one canvas."""
        order = np.argsort(cls, kind="stable")  # by colour, raster order within
        sel, p, cls = sel[order], p[order], cls[order]
        starts = np.searchsorted(cls, np.arange(len(self.colors) + 1))  # each colour's first point
        rows, cols = sel // w, sel % w
        boxes = []  # (first point, end, row shift, column shift) of each colour drawn
        top = width = 0
        for ci in range(len(self.colors)):
            a, b = int(starts[ci]), int(starts[ci + 1])
            if b - a < MIN_PIXELS:
                continue
            r, c = rows[a:b], cols[a:b]
            boxes.append((a, b, int(r.min()) - top, int(c.min())))
            top += int(r.max() - r.min()) + 2  # its rows and an empty one
            width = max(width, int(c.max() - c.min()) + 1)
        if not boxes:
            return
        at = np.concatenate([np.arange(a, b) for a, b, _, _ in boxes])
        shift = np.repeat([(dr, dc) for _, _, dr, dc in boxes], [b - a for a, b, _, _ in boxes], axis=0)
        canvas_rc = np.stack([rows[at], cols[at]], -1) - shift
        canvas = np.zeros((top, width), bool)
        canvas[canvas_rc[:, 0], canvas_rc[:, 1]] = True
        labels, n = ndimage.label(canvas, structure=_EIGHT)
        label = labels[canvas_rc[:, 0], canvas_rc[:, 1]]
        by_label = np.argsort(label, kind="stable")  # raster order within a component
        sizes = np.bincount(label, minlength=n + 1)
        ends = np.cumsum(sizes)
        colour_of = cls[at][by_label]
        pts = p[at][by_label]
        for k in range(1, n + 1):  # colour by colour (the boxes' order), raster order within
            if sizes[k] >= MIN_PIXELS:
                yield self.colors[int(colour_of[ends[k] - 1])], pts[ends[k] - sizes[k] : ends[k]]

    def _depth_window(self, h: int, w: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per pixel: its base-frame ray (``sim.camera.pixel_rays``, a point at depth ``d`` is
        ``T[:3, 3] + d * ray``) and the open depth range ``(near, far)`` whose points lie in the
        work area (above the table, inside AREA_X/AREA_Y), a hair wider than exact. Computed once:
        the camera does not move between frames."""
        if self._window is None or self._window[1].shape != (h, w):
            v, u = np.mgrid[0:h, 0:w]
            rays = pixel_rays(self.camera.K, self.camera.T, u.reshape(-1), v.reshape(-1))
            near, far = np.zeros(h * w), np.full(h * w, np.inf)
            origin = self.camera.T[:3, 3]
            for axis, lo, hi in ((0, *AREA_X), (1, *AREA_Y), (2, AREA_Z[0], np.inf)):
                r = rays[:, axis]
                with np.errstate(divide="ignore", invalid="ignore"):
                    a, b = (lo - origin[axis]) / r, (hi - origin[axis]) / r
                lower = np.where(r > 0, a, np.where(r < 0, b, np.where(lo < origin[axis], -np.inf, np.inf)))
                upper = np.where(r > 0, b, np.where(r < 0, a, np.where(origin[axis] < hi, np.inf, -np.inf)))
                near, far = np.maximum(near, lower), np.minimum(far, upper)
            slack = 1e-6  # metres of depth: rounding at the borders is settled by the exact test
            self._window = (rays, (near - slack).reshape(h, w), (far + slack).reshape(h, w))
        return self._window

    def _classes(self, rgb: np.ndarray) -> np.ndarray:
        """``classify_colors(hsv_image(rgb), self.colors)`` for (N, 3) uint8 pixels, remembered per
        colour value: a scene shows a few hundred distinct colours, so most frames need no new
        classification (the same answers: a pixel's class depends only on its colour)."""
        c = rgb.astype(np.uint32)
        codes = (c[:, 0] << 16) | (c[:, 1] << 8) | c[:, 2]
        keys, classes = self._color_cache
        at = np.minimum(np.searchsorted(keys, codes), max(len(keys) - 1, 0))
        known = keys[at] == codes if len(keys) else np.zeros(len(codes), bool)
        if not known.all():
            new = np.unique(codes[~known])
            if len(keys) + len(new) > _COLOR_CACHE_MAX:  # a noisy camera: start over
                keys, classes, new = keys[:0], classes[:0], np.unique(codes)
            pixels = np.stack([new >> 16, (new >> 8) & 255, new & 255], -1).astype(np.uint8)
            keys = np.concatenate([keys, new])
            classes = np.concatenate([classes, classify_colors(hsv_image(pixels), self.colors)])
            order = np.argsort(keys, kind="stable")
            keys, classes = keys[order], classes[order]
            self._color_cache = (keys, classes)
            at = np.searchsorted(keys, codes)
        return classes[at]

    def _describe(self, color: str, p: np.ndarray, n: int, covered: bool = False) -> Detection:
        ordered = np.sort(p, axis=0)  # each coordinate on its own
        lo, hi = _percentiles(ordered[:, :2], (5, 95))
        extent = float(np.max(hi - lo))
        if extent > CONTAINER_EXTENT:
            centre = (lo + hi) / 2
            return Detection(color, "container", np.array([centre[0], centre[1], 0.0]), n)
        top = float(_percentiles(ordered[:, 2], (90,))[0])
        face = p[p[:, 2] > top - 0.008]
        if len(face) >= 3 and not covered:
            xy = _median(face[:, :2])
        else:  # only side faces seen: shift half a block away from the camera
            away = p[:, :2].mean(0) - self.camera.T[:2, 3]
            xy = _median(p[:, :2]) + away / max(np.linalg.norm(away), 1e-6) * BLOCK_SIZE / 2
        return Detection(
            color, "block", np.array([xy[0], xy[1], max(top - BLOCK_SIZE / 2, BLOCK_SIZE / 2)]), n
        )

    # ------------------------------------------------------------------ detections -> world state
    def world(self, obs: Observation) -> WorldState:
        """Estimated object states (missing objects keep their last position) and contacts."""
        dets = self.detect(obs)
        state = np.asarray(obs[STATE], np.float64)
        ee, width = state[:3], float(state[6])
        positions: dict[str, np.ndarray] = {}
        pixels: dict[str, int] = {}
        for (color, is_block), names in self._groups().items():
            cands = [d for d in dets if d.color == color and (d.kind == "block") == is_block]
            if not cands and not is_block:  # a container partly hidden may look block-sized
                cands = [d for d in dets if d.color == color and d.kind == "block"]
            cands.sort(key=lambda d: -d.pixels)
            free = list(range(len(cands)))
            for name in names:
                prev = self.last.get(name)
                if not free:
                    break
                j = min(
                    free,
                    key=lambda j: 0.0 if prev is None else float(np.linalg.norm(cands[j].position - prev)),
                )
                positions[name] = cands[j].position
                pixels[name] = cands[j].pixels
                free.remove(j)
        holding = closed_on_block(width)
        if not holding:
            self.grasped = None
        elif self.grasped is None:  # the fingers just closed on something: the block between them
            near = [
                (float(np.linalg.norm(self.last[o.name] - ee)), o.name)
                for o in self.objects
                if o.kind == "block" and o.name in self.last
            ]
            near = [t for t in near if t[0] < 0.06]
            self.grasped = min(near)[1] if near else ""
        # The grasped block may be hidden by the fingers: it moves with the hand. Any other
        # hidden block stays where it was last seen (the hand passing over it does not carry it).
        for o in self.objects:
            if o.name in positions or o.name not in self.last:
                continue
            positions[o.name] = ee.copy() if o.name == self.grasped else self.last[o.name]
        held = None
        if holding:
            near = [
                (float(np.linalg.norm(positions[o.name] - ee)), o.name)
                for o in self.objects
                if o.kind == "block" and o.name in positions
            ]
            near = [t for t in near if t[0] < 0.045]
            held = min(near)[1] if near else None
        # What this frame saw itself (not carried over) and with how many pixels: the detector
        # abstains on what it cannot see.
        self.seen = pixels  # only what this frame saw: carried-over objects are not in it
        self.last.update(positions)
        objs = {
            o.name: ObjectState(
                o.name,
                o.kind,
                o.color,
                positions[o.name],
                0.0,
                2 if o.name == held else 0,
            )
            for o in self.objects
            if o.name in positions
        }
        return WorldState(objs, reference=dict(self._reference))

    def _groups(self) -> dict[tuple[str, bool], list[str]]:
        groups: dict[tuple[str, bool], list[str]] = {}
        for o in self.objects:
            groups.setdefault((o.color, o.kind == "block"), []).append(o.name)
        return groups

    def snapshot(self) -> None:
        """Take the current estimates as the reference for ``moved(obj, direction)``."""
        self._reference = {k: v.copy() for k, v in self.last.items()}
