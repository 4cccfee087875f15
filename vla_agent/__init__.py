"""vla-agent: natural-language robot agent orchestrator (LLM planner + VLA skills + safety shield)."""

__version__ = "0.1.0"
