"""Typed errors with one-line messages a user can act on, and a did-you-mean helper."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class VlaAgentError(Exception):
    """Base class of every error vla-agent raises on purpose."""


class ConfigError(VlaAgentError, ValueError):
    """A configuration, scene spec or name is invalid."""


class ActionError(VlaAgentError, ValueError):
    """An action is malformed (wrong shape, NaN/inf, out of range)."""


class PolicyUnavailable(VlaAgentError):
    """The skill policy cannot answer (a dead or hung policy server): the run ends with one error
    instead of retrying and replanning against it."""


class RobotUnavailable(VlaAgentError):
    """The robot stopped answering (its state stream went silent): the arm holds and the run ends
    with one error instead of retrying and replanning against it."""


def suggest(name: str, choices: Iterable[str]) -> str:
    """Return ' (did you mean X?)' for the closest valid choice, or '' when none is close."""
    close = difflib.get_close_matches(name, list(choices), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def unknown(what: str, name: str, choices: Iterable[str]) -> ConfigError:
    """Build the standard 'unknown X' error listing valid choices."""
    choices = sorted(choices)
    return ConfigError(f"unknown {what} {name!r}{suggest(name, choices)}; valid: {', '.join(choices)}")
