"""The language-level safety check, run before any planner sees a command.

It refuses, with the reason, commands that involve people or animals, throwing or striking,
speed/force/workspace/safety overrides, and text that is not a tabletop task at all. It is code,
not a prompt: an LLM planner never gets the chance to comply with an unsafe request.
"""

from __future__ import annotations

import re

_RULES: tuple[tuple[str, str], ...] = (
    (
        r"\b(person|people|human|humans|someone|somebody|anyone|child|children|kid|kids|baby|man|woman|"
        r"operator|user|me|myself|him|her|face|hand|hands|finger|fingers|head|eye|eyes|"
        r"dog|cat|pet|animal)\b",
        "involves a person or animal; the robot only handles objects on the table",
    ),
    (
        r"\b(throw|throws|throwing|toss|tossing|fling|hurl|launch|smash|hit|hitting|strike|punch|slam|"
        r"crush|break|attack|stab|knock over)\b",
        "asks to throw or strike; only pick, place and push motions are allowed",
    ),
    (
        r"\b(fast as|full speed|max(imum)? speed|faster|hurry|quickly as possible|top speed|max(imum)? force|"
        r"full force|as hard as|speed limit|override|bypass)\b|\b(disable|ignore|turn off|switch off|skip)\b"
        r".{0,24}\b(safety|shield|limits?|speed|force|workspace|collision|checks?)\b",
        "asks to override speed, force or safety limits, which are fixed in code",
    ),
    (
        r"\b(off the table|outside the workspace|out of (the )?workspace|beyond the (table|workspace)|"
        r"onto the floor|on the floor|out of reach|out of bounds)\b",
        "asks to move outside the workspace",
    ),
)

_TASK_WORDS = re.compile(
    r"\b(pick|grab|grasp|lift|take|get|put|place|drop|move|stack|push|slide|shove|nudge|set|lay|"
    r"deposit|sort|clear|tidy|clean|arrange|do|same|build|make|gather|collect|pile|hold|leave)\b"
)


def check_command(command: str) -> str | None:
    """The reason to refuse ``command``, or None when it may go to the planner."""
    text = " ".join(command.lower().replace("'", " ").split())
    text = re.sub(r"\b(towards?|to) me\b", "backward", text)  # a direction, not a person
    if not text:
        return "empty command"
    if len(text) > 500:
        return "command too long (over 500 characters)"
    for pattern, reason in _RULES:
        m = re.search(pattern, text)
        if m:
            return f'{reason} ("{m.group(0)}")'
    if not _TASK_WORDS.search(text):
        return "not a manipulation task; try e.g. 'put the red block in the bowl'"
    return None
