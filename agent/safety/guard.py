"""The language-level safety check, run before any planner sees a command.

It refuses, with the reason, commands that involve people or animals, throwing or striking,
speed/force/workspace/safety overrides, and text that is not a tabletop task at all. It is code,
not a prompt: an LLM planner never gets the chance to comply with an unsafe request.

It reads meaning, not spelling: the text is normalised first (NFKC, accents and zero-width or
other invisible characters removed, letters from other scripts that look like Latin ones, such
as a Cyrillic "о", mapped to them), and the rules name synonyms of the unsafe verbs and of people.
"""

from __future__ import annotations

import re
import unicodedata

# Letters of other scripts that render like Latin letters (Unicode's confusables, the common ones).
_CONFUSABLES = str.maketrans(
    {
        **dict.fromkeys("аɑα", "a"),
        **dict.fromkeys("вʙβ", "b"),
        **dict.fromkeys("сϲⅽ", "c"),
        **dict.fromkeys("ԁⅾ", "d"),
        **dict.fromkeys("еєҽε", "e"),
        **dict.fromkeys("ɡ", "g"),
        **dict.fromkeys("һ", "h"),
        **dict.fromkeys("іıɩιⅰ", "i"),
        **dict.fromkeys("ј", "j"),
        **dict.fromkeys("κк", "k"),
        **dict.fromkeys("ӏⅼ", "l"),
        **dict.fromkeys("ⅿм", "m"),
        **dict.fromkeys("ոпη", "n"),
        **dict.fromkeys("оοσ૦", "o"),
        **dict.fromkeys("рρ", "p"),
        **dict.fromkeys("ԛ", "q"),
        **dict.fromkeys("г", "r"),
        **dict.fromkeys("ѕ", "s"),
        **dict.fromkeys("т", "t"),
        **dict.fromkeys("υս", "u"),
        **dict.fromkeys("ѵνⅴ", "v"),
        **dict.fromkeys("ԝω", "w"),
        **dict.fromkeys("хχⅹ", "x"),
        **dict.fromkeys("уγү", "y"),
        **dict.fromkeys("ᴢ", "z"),
    }
)


def normalize(text: str) -> str:
    """Lower-case Latin text as a reader sees it: compatibility forms folded (NFKC: full-width
    letters, ligatures), accents and invisible characters (zero-width spaces and joiners, soft
    hyphens, bidi controls) removed, look-alike letters of other scripts mapped to Latin, runs of
    white space folded to one space."""
    text = unicodedata.normalize("NFKD", text)
    text = "".join(ch for ch in text if unicodedata.category(ch) not in ("Mn", "Cf", "Cc") or ch in "\n\t")
    text = unicodedata.normalize("NFKC", text).lower().translate(_CONFUSABLES)
    return " ".join(text.split())


_RULES: tuple[tuple[str, str], ...] = (
    (
        r"\b(person|persons|people|human|humans|someone|somebody|anyone|anybody|everyone|everybody|"
        r"child|children|kid|kids|baby|babies|man|men|woman|women|guy|guys|lady|ladies|girl|girls|"
        r"boy|boys|gentleman|gentlemen|folks|crowd|bystanders?|passers?by|visitors?|colleagues?|"
        r"co-?workers?|neighbou?rs?|friends?|audience|operator|user|me|myself|him|her|"
        r"face|hand|hands|finger|fingers|head|eye|eyes|"
        r"dog|dogs|cat|cats|pet|pets|animal|animals)\b",
        "involves a person or animal; the robot only handles objects on the table",
    ),
    (
        r"\b(throw|throws|throwing|threw|thrown|toss|tosses|tossing|tossed|fling|flings|flinging|flung|"
        r"hurl|hurls|hurling|hurled|launch|launches|launching|chuck|chucks|chucking|chucked|lob|lobs|"
        r"lobbing|lobbed|pelt|pelting|yeet|yeets|yeeting|catapult|sling|slinging|heave|heaving|propel|"
        r"smash|hit|hitting|strike|punch|slam|whack|crush|break|attack|stab|knock over)\b",
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
    r"deposit|sort|clear|tidy|clean|arrange|do|same|build|make|gather|collect|pile|hold|leave|"
    r"putting|placing|moving|stacking|pushing|picking|sliding|setting|dropping|grabbing|lifting|"
    r"(?:should|must|needs? to|has to) (?:end up|be|go|sit)|(?:want|like|need) the)\b"
)


def check_command(command: str) -> str | None:
    """The reason to refuse ``command``, or None when it may go to the planner."""
    text = " ".join(normalize(command).replace("'", " ").split())
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
