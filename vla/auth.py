"""Where the policy server's API key comes from, for the server and for every client.

A key on the command line is visible to every user of the machine (``ps``), so the key is read,
in this order, from: a key given in code (``api_key=``), a file named by ``--api-key-file`` or
``VLA_AGENT_API_KEY_FILE``, the environment variable ``VLA_AGENT_API_KEY``, and the config file
``~/.config/vla-agent/api_key`` (``$XDG_CONFIG_HOME`` honoured). The first one found wins.
"""

from __future__ import annotations

import os
from pathlib import Path

from vla_agent.errors import ConfigError

ENV_KEY = "VLA_AGENT_API_KEY"
ENV_FILE = "VLA_AGENT_API_KEY_FILE"


def config_key_path() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config"
    return Path(base) / "vla-agent" / "api_key"


def _read_key(path: Path) -> str:
    try:
        text = path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(
            f"cannot read the API key file {path}: {getattr(e, 'strerror', None) or e}"
        ) from None
    if not text or "\n" in text or len(text) > 4096:
        raise ConfigError(f"the API key file {path} must hold one key on one line")
    return text


def resolve_api_key(api_key: str | None = None, key_file: str | Path | None = None) -> str | None:
    """The API key to use, or None when none is configured anywhere."""
    if api_key:
        return api_key
    named = key_file or os.environ.get(ENV_FILE)
    if named:
        return _read_key(Path(named).expanduser())
    if os.environ.get(ENV_KEY):
        return os.environ[ENV_KEY]
    default = config_key_path()
    return _read_key(default) if default.is_file() else None
