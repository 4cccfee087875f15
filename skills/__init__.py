"""The skill library (one file per skill: ``pick``, ``place``, ``push``, ``place_beside``; plugins
add theirs by entry point) and the engines over it: the scripted expert, task sampling, rollouts."""

from vla_agent.skills.library import SKILLS, SkillSpec, all_skills, get_skill, skill_names

__all__ = ["SKILLS", "SkillSpec", "all_skills", "get_skill", "skill_names"]
