"""The executor's judgements at the end of an attempt: may a failed subgoal be retried, and
what the detector concludes when the policy has finished without a DONE (asking a person when
it cannot tell)."""

from __future__ import annotations

from vla_agent.agent.perception.detectors import effect_question
from vla_agent.errors import VlaAgentError
from vla_agent.sim.predicates import evaluate
from vla_agent.skills.library import get_skill
from vla_agent.types import Status, Subgoal


def can_retry(executor, sg: Subgoal) -> bool:
    """Retry only when the skill's preconditions still hold in the perceived scene."""
    w = executor.perception.world(executor.backend.observe())
    kinds = {o.name: o.kind for o in executor.perception.objects}
    try:
        pre = get_skill(sg.skill).ground("pre", sg.args, kinds)
        pre = [p for p in pre if p.name != "clear" or kinds.get(p.args[0]) != "bowl"]
        return all(evaluate(w, p) for p in pre)
    except VlaAgentError:
        return False


def conclude(executor, index: int, sg: Subgoal, obs, steps: int, reason: str) -> tuple[Status, int, str]:
    """The detector's last word on a subgoal the policy ended without a DONE. When it cannot
    tell, a person answers (``ask``: the chat REPL, voice); unattended, it counts as not done."""
    last_word = getattr(executor.detector, "conclude", None)
    verdict = last_word(sg, obs) if last_word is not None else None
    if verdict is None or verdict.status is Status.FAILED:
        return Status.FAILED, steps, reason
    if verdict.status is Status.DONE:
        return Status.DONE, steps, verdict.reason
    kinds = {o.name: o.kind for o in executor.perception.objects}
    question = effect_question(get_skill(sg.skill).ground("post", sg.args, kinds))
    answer = executor.ask(question) if executor.ask is not None else None
    executor.events.emit("unsure", index=index, reason=verdict.reason, question=question, answer=answer)
    if answer is None:
        return (
            Status.FAILED,
            steps,
            f"the detector could not tell ({verdict.reason}); treated as not done",
        )
    return (
        (Status.DONE if answer else Status.FAILED),
        steps,
        f"asked {question!r}: {'yes' if answer else 'no'}",
    )
