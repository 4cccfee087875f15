"""The skill library (typed specs with paraphrases, preconditions, effects, budgets) and the
policies that execute skills: scripted experts here, the VLA in ``vla_agent.vla``."""

from vla_agent.skills.library import SKILLS, SkillSpec, get_skill

__all__ = ["SKILLS", "SkillSpec", "get_skill"]
