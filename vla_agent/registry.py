"""One small registry for every kind of part: name -> factory, ``kind:arg`` specs, did-you-mean.

Built-in parts register themselves where they are defined::

    ARMS: Registry[ArmFactory] = Registry("arm", entry_point_group="vla_agent.arms")

    @ARMS.register("xarm", help="UFactory xArm through xarm-python-sdk (xarm:IP)")
    def _xarm(arg: str, **kw): ...

    arm = ARMS.create("xarm:192.168.1.5")    # the factory gets "192.168.1.5"
    ARMS.create("xram:1.2.3.4")               # ConfigError: unknown arm 'xram' (did you mean 'xarm'?)

Other packages add parts without touching vla-agent through Python entry points, one group per
kind (``[project.entry-points."vla_agent.arms"] myarm = "mypkg.arm:factory"``); they are loaded
the first time a registry is asked for names or a part. A spec is ``name`` or ``name:arg``; a URL
(``ws://host:port``) is looked up by its scheme and its factory gets the whole URL.
"""

from __future__ import annotations

import importlib.metadata
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from vla_agent.errors import ConfigError, suggest

T = TypeVar("T")


@dataclass(frozen=True)
class Entry(Generic[T]):
    name: str
    factory: T
    help: str = ""
    origin: str = "vla-agent"  # "vla-agent" for built-ins, the distribution name for plugins
    form: str = ""  # how a spec for it is written when it takes an argument ("xarm:IP")

    @property
    def usage(self) -> str:
        return self.form or self.name


def parse_spec(spec: str) -> tuple[str, str]:
    """``"xarm:1.2.3.4"`` -> ``("xarm", "1.2.3.4")``; ``"ws://h:1"`` -> ``("ws", "ws://h:1")``."""
    spec = spec.strip()
    if "://" in spec:
        return spec.split("://", 1)[0], spec
    name, _, arg = spec.partition(":")
    return name, arg


class Registry(Generic[T]):
    """Factories of one kind of part, by name."""

    def __init__(self, kind: str, entry_point_group: str | None = None):
        self.kind = kind
        self.group = entry_point_group
        self._entries: dict[str, Entry[T]] = {}
        self._loaded = entry_point_group is None
        self.errors: list[str] = []  # plugins that failed to load, one line each

    def register(
        self,
        name: str,
        factory: T | None = None,
        *,
        help: str = "",
        form: str = "",
        origin: str = "vla-agent",
    ):
        """Register ``factory`` under ``name`` (or use as a decorator). A name taken twice is an
        error, so a plugin cannot silently replace a built-in."""

        def add(f: T) -> T:
            if name in self._entries and self._entries[name].factory is not f:
                raise ConfigError(f"{self.kind} {name!r} is registered twice ({self._entries[name].origin})")
            self._entries[name] = Entry(name, f, help, origin, form)
            return f

        return add(factory) if factory is not None else add

    def _load_plugins(self) -> None:
        if self._loaded:
            return
        self._loaded = True
        for ep in importlib.metadata.entry_points(group=self.group):
            origin = ep.dist.name if ep.dist is not None else ep.value
            try:
                obj = ep.load()
            except Exception as e:  # noqa: BLE001 - a broken plugin must not break vla-agent
                self.errors.append(f"{self.kind} {ep.name!r} from {origin}: {type(e).__name__}: {e}")
                continue
            if ep.name not in self._entries:
                text = obj.__doc__ if callable(obj) else getattr(obj, "doc", "")  # a spec: its doc
                doc = (text or "").strip().split("\n")[0]
                self.register(ep.name, obj, help=doc, origin=origin)

    def names(self) -> list[str]:
        self._load_plugins()
        return sorted(self._entries)

    def entries(self) -> list[Entry[T]]:
        self._load_plugins()
        return [self._entries[n] for n in sorted(self._entries)]

    def __contains__(self, name: str) -> bool:
        self._load_plugins()
        return name in self._entries

    def get(self, spec: str) -> tuple[T, str]:
        """The factory registered for ``spec``'s name, and the spec's argument."""
        self._load_plugins()
        name, arg = parse_spec(spec)
        entry = self._entries.get(name)
        if entry is None:
            valid = ", ".join(e.usage for e in self.entries())
            raise ConfigError(f"unknown {self.kind} {spec!r}{suggest(name, self._entries)}; valid: {valid}")
        return entry.factory, arg

    def create(self, spec: str, *args: Any, **kwargs: Any) -> Any:
        """Build the part named by ``spec``: ``factory(arg, *args, **kwargs)``."""
        factory, arg = self.get(spec)
        return factory(arg, *args, **kwargs)  # type: ignore[operator]

    def help(self) -> str:
        """For ``--help``: the registered names, written as specs (``vla | expert | ws://HOST:PORT``)."""
        return " | ".join(e.usage for e in self.entries())


REGISTRIES: dict[str, Registry] = {}  # every registry made by ``registry()``, by kind


def registry(kind: str, entry_point_group: str) -> Registry:
    """Create a registry and list it in ``REGISTRIES`` (what ``vla-agent plugins`` shows)."""
    if kind in REGISTRIES:
        return REGISTRIES[kind]
    r: Registry = Registry(kind, entry_point_group)
    REGISTRIES[kind] = r
    return r
