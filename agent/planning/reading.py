"""How the offline planner reads a command before grounding it: lower case and punctuation,
typos in common words and names, requests and wishes as commands ("would you mind putting ...",
"the X should end up in ..."), corrections ("on the plate, sorry, in the bowl"), and the split
into clauses, with ellipsis ("... and the red one on the plate", "... the red one too")."""

from __future__ import annotations

import re

from vla_agent.agent.planning.lexicon import (
    COLOR_WORDS,
    DIRECTION_WORDS,
    FILLER,
    GENERIC,
    KIND_WORDS,
    REGION_WORDS,
    SEQUENCERS,
    all_verbs,
)

GERUNDS = {
    "putting": "put",
    "placing": "place",
    "moving": "move",
    "stacking": "stack",
    "pushing": "push",
    "picking": "pick",
    "sliding": "slide",
    "setting": "set",
    "dropping": "drop",
    "grabbing": "grab",
    "lifting": "lift",
}
COMMON_TYPOS = {
    "teh": "the",
    "hte": "the",
    "adn": "and",
    "nad": "and",
    "ont": "on",
    "inot": "into",
    "int": "in",
}
# Everyday words that are never typos of our words ("like" is not "lime").
PLAIN_WORDS = {
    "like", "love", "need", "want", "have", "take", "give", "bring", "here", "where", "what", "when",
    "should", "would", "could", "thanks", "thank", "mind", "kindly", "bowls", "plates", "blocks",
    "cubes", "everything", "something", "anything", "another", "other", "same", "colour", "color",
    "matches", "match", "different", "bottom", "tower", "towers", "stack", "stacks", "first", "last",
    "most", "closest", "nearest", "farthest", "furthest", "leftmost", "rightmost", "next", "near",
}  # fmt: skip
CORRECTION = re.compile(r"\s*,?\s*\b(?:sorry|no wait|wait no|i mean|actually|rather|correction)\b\s*,?\s*")


def _polite(t: str) -> str:
    """Requests and wishes as commands: "would you mind putting X in Y", "could you please put
    ...", "the X should end up in Y", "I want the X in Y" -> "put X in Y"."""
    t = re.sub(r"^(?:please )?(?:would|could|can|will) you (?:please )?(?:kindly )?(?:mind )?", "", t)
    t = re.sub(r"^(?:i(?: would|d)? like you to|i want you to|i need you to|please)\s+", "", t)
    t = re.sub(r"^(\w+ing)\b", lambda m: GERUNDS.get(m.group(1), m.group(1)), t)
    t = re.sub(
        r"^(?:i (?:want|would like|d like|need) )?(the .+?) (?:should|must|needs? to|has to) "
        r"(?:end up |be |go |sit )?(in|on|at|next to|beside) ",
        r"put \1 \2 ",
        t,
    )
    return re.sub(r"^i (?:want|would like|d like|need) (the .+? (?:in|on|at) )", r"put \1", t)


def _corrected(t: str) -> str:
    """A correction replaces what it corrects: "on the plate, sorry, in the bowl" -> "in the bowl";
    "the red block, I mean the blue block, in the bowl" -> "the blue block in the bowl"."""
    for _ in range(3):
        m = CORRECTION.search(t)
        if not m:
            break
        before, after = t[: m.start()], t[m.end() :]
        rel = re.match(r"(in|on|at|to|next to|beside|by)\b", after)
        if rel:
            cut = max(
                (x.start() for x in re.finditer(r"\b(?:in|on|at|to|next to|beside|by)\b", before)), default=-1
            )
        else:
            cut = max((x.start() for x in re.finditer(r"\bthe\b", before)), default=-1)
        t = (before[:cut] if cut >= 0 else before + " ") + after
    return " ".join(t.split())


def _fix_typos(t: str) -> str:
    """Common typos of function words, and names one edit away from exactly one known word
    ("blok" -> "block", "bowel" -> "bowl")."""
    known = set(KIND_WORDS) | {w for w in COLOR_WORDS if COLOR_WORDS[w]} | set(REGION_WORDS) | all_verbs()
    known_words = known | PLAIN_WORDS
    words = []
    for w in t.split():
        w = COMMON_TYPOS.get(w, w)
        words_we_know = (
            w in known_words or w in FILLER or w in COLOR_WORDS or w in GENERIC or w in DIRECTION_WORDS
        )
        if len(w) >= 4 and not words_we_know and not w.endswith("s"):
            near = [k for k in known if len(k) >= 4 and _one_edit(w, k)]
            if len(near) == 1:
                w = near[0]
        words.append(w)
    return " ".join(words)


def _one_edit(a: str, b: str) -> bool:
    """One insertion, deletion, substitution or swap of neighbours apart."""
    if a == b or abs(len(a) - len(b)) > 1:
        return False
    if len(a) == len(b):
        diff = [i for i in range(len(a)) if a[i] != b[i]]
        return len(diff) == 1 or (
            len(diff) == 2
            and diff[1] == diff[0] + 1
            and a[diff[0]] == b[diff[1]]
            and a[diff[1]] == b[diff[0]]
        )
    short, long_ = (a, b) if len(a) < len(b) else (b, a)
    return any(long_[:i] + long_[i + 1 :] == short for i in range(len(long_)))


def normalize_command(command: str) -> str:
    t = command.lower().replace("colour", "color")
    t = re.sub(r"[,]", " , ", t)
    t = re.sub(r"[^a-z0-9;.!, ]", " ", t)
    t = _fix_typos(" ".join(t.split()))
    t = _corrected(_polite(t))
    t = re.sub(r"\bon top of\b|\bonto\b|\batop\b|\bupon\b", "on", t)
    t = re.sub(r"\binto\b|\binside of\b|\binside\b|\bwithin\b", "in", t)
    t = re.sub(r"(?<!closest )(?<!nearest )(?<!farthest )(?<!furthest )\b(towards?|to) me\b", "backward", t)
    t = re.sub(r"\bpick (\w+(?: \w+)?) up\b", r"pick \1", t)
    t = re.sub(r"\b(put|set|lay|place) (it|them) down\b", r"\1 \2", t)
    t = re.sub(r"\b(?:a (?:little )?bit|a little|slightly|just a bit)\b", " ", t)
    return " ".join(t.split())


RELATION = r"\b(?:in|on|at|to|next to|beside|by|behind)\b"


def reading(command: str) -> str:
    """The command as the planner reads it (lower case, typos fixed, requests as commands,
    corrections applied): what the intent check compares the plan with."""
    return normalize_command(command)


def answered(command: str, about: str, option: str) -> str:
    """``command`` with the ambiguous words ``about`` replaced by the object the answer chose."""
    text = normalize_command(command)
    about = about.strip()
    if re.fullmatch(r"(?:over )?(?:there|here)", about):  # where: "in the bowl", "on the plate"
        chosen = f"{'in' if option.split()[-1] in ('bowl', 'bowls') else 'on'} the {option}"
    else:
        chosen = f"the {option}"
    return re.sub(rf"\b{re.escape(about)}\b", chosen, text, count=1) if about else text


def split_clauses(text: str) -> list[str]:
    parts = re.split(SEQUENCERS, text)
    out: list[str] = []
    verbs = all_verbs()
    verb_alt = "|".join(sorted(verbs | {"same"}, key=len, reverse=True))
    for part in parts:
        # ", and <verb>" / "and <verb>" / ", <verb>" start a new clause; "red and blue blocks" does not;
        # nor does "and the ..." unless both sides say where (ellipsis: "X in the bowl and the red one
        # on the plate").
        pieces = re.split(
            rf"\s*,?\s*\band\b\s+(?=(?:{verb_alt}|the same)\b)|\s*,\s*(?=(?:{verb_alt}|the same)\b)", part
        )
        for piece in (p for chunk in pieces for p in _split_ellipsis(chunk)):
            piece = piece.strip(" ,")
            piece = re.sub(r"^(first|and|also|now|please|then)\s+", "", piece)
            if piece:
                out.append(_complete(piece, out, verbs))
    return out


# ", the red one ..." / "and blue on ...": where an ellipsis may start; and a tower's order words
_NEXT_PHRASE = re.compile(
    rf"\s*(?:,\s*(?:and\s+)?|\band\s+)(?=the\b|(?:{'|'.join(w for w in COLOR_WORDS if COLOR_WORDS[w])})\b)"
)
_ORDER_END = re.compile(r"\b(?:on top|(?:at|on) the (?:top|bottom|base)|as the base|first|last)\s*$")


def _split_ellipsis(text: str) -> list[str]:
    m = _NEXT_PHRASE.search(text)
    if m and _ORDER_END.search(text[m.end() :]):  # "with X at the bottom and the Y one on top"
        return [text]
    if m and re.search(RELATION, text[: m.start()]) and re.search(RELATION, text[m.end() :]):
        return [text[: m.start()], *_split_ellipsis(text[m.end() :])]
    return [text]


def _complete(piece: str, previous: list[str], verbs: set[str]) -> str:
    """A clause without a verb borrows the previous clause's ("and the red one on the plate" ->
    "put the red one on the plate"); "the red one too" is "the same with the red one"."""
    words = piece.split()
    if (
        not previous
        or any(w in verbs for w in words)
        or piece.startswith(("the same", "do the same", "same"))
    ):
        return piece
    bare = re.sub(r"\s*\b(?:too|as well|also)\b\s*$", "", piece)
    if re.search(RELATION, bare) or re.search(r"\b(left|right|forwards?|backwards?|away|ahead|back)\b", bare):
        verb = next((w for w in previous[-1].split() if w in verbs), "")
        return f"{verb} {bare}" if verb else piece
    return f"the same with {bare}"
