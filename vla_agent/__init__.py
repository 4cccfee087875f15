"""vla-agent: natural-language robot agent orchestrator (LLM planner + VLA skills + safety shield)."""

from pathlib import Path as _Path

__version__ = "0.1.0"

# In a source checkout the subpackages live in the top-level folders the project asked for (sim/,
# skills/, vla/, agent/, prompts/), which an installer maps into ``vla_agent``. Run from the
# checkout (``python -m pytest``, ``python -c "import vla_agent.sim"``, import-linter), this folder
# shadows an installed copy, so it maps them itself: the checkout is then importable however the
# project was installed (editable, a wheel, not at all). An installed copy never takes this branch.
_root = _Path(__file__).resolve().parent.parent
_checkout = all((_root / d / "__init__.py").is_file() for d in ("sim", "skills", "vla", "agent"))
if _checkout and 'name = "vla-agent"' in (_root / "pyproject.toml").read_text(errors="replace"):
    __path__.append(str(_root))  # noqa: F821 - the package's own search path
