"""The LLM planner: any LangChain chat model by a ``provider:model`` string.

OpenAI by default (``openai:gpt-4o-mini``); any OpenAI-compatible server (vLLM, Ollama,
llama.cpp) with ``base_url``. Prompts come from ``prompts/``; the answer is structured output
(JSON mode) parsed into ``PlanOutput`` and validated against the skills and the scene. Parse or
validation errors go back to the model for ``retries`` more attempts; a timeout or exhausted
retries end in a clear ``PlannerError`` or, when configured, the offline planner.
"""

from __future__ import annotations

import importlib.resources
import json
import logging
import os
import re
import time
from collections.abc import Sequence
from functools import cache
from pathlib import Path
from string import Template

import yaml

from vla_agent.agent.planning.plan import (
    CAPACITY,
    MAX_TOWER,
    Plan,
    PlanError,
    PlanOutput,
    PlanStep,
    resolve_name,
    validate_plan,
)
from vla_agent.errors import ConfigError, VlaAgentError
from vla_agent.sim.catalog import REGIONS
from vla_agent.sim.predicates import DIRECTIONS
from vla_agent.skills.library import ArgType, all_skills
from vla_agent.types import Scene, SceneObject, Status, StepOutcome

DEFAULT_MODEL = "openai:gpt-4o-mini"
# prompts/ is installed next to agent/ (package vla_agent.prompts), in wheels and editable installs.
log = logging.getLogger(__name__)
PROMPTS_DIR = Path(str(importlib.resources.files("vla_agent.prompts")))  # installed as package data


# Structured-output methods, best first: a JSON schema the server enforces, a tool call, JSON
# mode, or plain text parsed and repaired. The first one a server takes is cached per server.
METHODS = ["json_schema", "function_calling", "json_mode", "text"]
_DETECTED: dict[tuple[str, str], str] = {}


class PlannerError(VlaAgentError):
    """The LLM planner could not produce a valid plan (timeout, unreachable, invalid answers)."""


@cache
def prompt(name: str) -> str:
    """The text of ``prompts/<name>``."""
    try:
        return (PROMPTS_DIR / name).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"prompt file {name!r} is missing from vla_agent/prompts") from None


def render(name: str, **values: str) -> str:
    return Template(prompt(name)).substitute(**values)


def skills_text() -> str:
    lines = []
    for s in all_skills():
        args = ", ".join(f"{a.name}: {a.doc}" for a in s.args)
        lines.append(f"- {s.name}({args}): {s.doc}")
    return "\n".join(lines)


def registry_examples() -> list[dict]:
    """One few-shot example per registered skill that ``prompts/examples.yaml`` does not show
    (place_beside, plugins' skills): the command is the skill's own first paraphrase, the answer
    the validated plan, so a skill added as one file is in the prompt without editing it."""
    shown = {step["skill"] for ex in yaml.safe_load(prompt("examples.yaml")) for step in _steps(ex["answer"])}
    names = ["red block", "green block", "blue bowl"]
    scene = Scene(tuple(SceneObject(n, n.split()[1], n.split()[0]) for n in names))
    values = {
        ArgType.OBJECT: "red block",
        ArgType.THING: "blue bowl",
        ArgType.TARGET: "blue bowl",
        ArgType.DIRECTION: "left",
    }
    out = []
    for spec in all_skills():
        if spec.name in shown:
            continue
        args = {a.name: values[a.type] for a in spec.args}
        steps = (
            [PlanStep(skill="pick", args={"obj": args["obj"]})]
            if "holding({obj})" in spec.preconditions
            else []
        )
        try:
            plan = validate_plan([*steps, PlanStep(skill=spec.name, args=args)], scene)
            command = spec.instruction(args, kinds=scene.kinds())
        except VlaAgentError:
            continue  # a skill this small scene cannot show
        out.append({"scene": ", ".join(names), "command": command, "answer": json.dumps(plan.to_json())})
    return out


def _steps(answer: str) -> list[dict]:
    return json.loads(answer).get("subgoals", [])


def scene_values(scene: Scene) -> dict[str, str]:
    return {
        "objects": ", ".join(scene.names),
        "relations": "; ".join(map(str, scene.relations)) or "none",
        "regions": ", ".join(REGIONS),
        "directions": ", ".join(DIRECTIONS),
    }


class LLMPlanner:
    name = "llm"

    def __init__(
        self,
        model: str = DEFAULT_MODEL,
        base_url: str | None = None,
        api_key: str | None = None,
        timeout: float = 30.0,
        retries: int = 2,
        fallback=None,
        temperature: float = 0.0,
        method: str = "auto",
    ):
        self.model_name = model
        self.base_url = base_url
        self.api_key = api_key
        self.timeout = timeout
        self.retries = retries
        self.fallback = fallback
        self.temperature = temperature
        self._chat = None
        self.last_attempts = 0
        if method != "auto" and method not in METHODS:
            raise ConfigError(
                f"unknown structured-output method {method!r}; one of auto, {', '.join(METHODS)}"
            )
        self.method = method
        self.method_used = ""

    def _model(self):
        if self._chat is None:
            try:
                from langchain.chat_models import init_chat_model
            except ImportError:
                raise ConfigError(
                    "the LLM planner needs the [llm] extra: pip install 'vla-agent[llm]'"
                ) from None
            # max_tokens bounds what a timed-out request keeps generating on a single-slot server
            kwargs = {
                "timeout": self.timeout,
                "max_retries": 0,
                "temperature": self.temperature,
                "max_tokens": 1024,
            }
            if self.base_url:
                kwargs["base_url"] = self.base_url
                kwargs["api_key"] = self.api_key or os.environ.get("OPENAI_API_KEY") or "not-needed"
            elif self.api_key:
                kwargs["api_key"] = self.api_key
            elif self.model_name.startswith("openai:") and not os.environ.get("OPENAI_API_KEY"):
                raise PlannerError("OPENAI_API_KEY is not set (or pass --llm-base-url for a local server)")
            self._chat = init_chat_model(self.model_name, **kwargs)
        return self._chat

    def _structured(self, method: str):
        """The chat model asked for ``method``'s form; the answer is parsed here, not by the
        client, so that a malformed one can be repaired or fed back."""
        chat = self._model()
        if method == "json_schema":
            schema = {"name": "PlanOutput", "schema": PlanOutput.model_json_schema()}
            return chat.bind(response_format={"type": "json_schema", "json_schema": schema})
        if method == "json_mode":
            return chat.bind(response_format={"type": "json_object"})
        if method == "function_calling":
            return chat.bind_tools([PlanOutput], tool_choice="PlanOutput")
        return chat

    def _invoke(self, messages) -> tuple[str, PlanOutput | None, str]:
        """One request: (the raw answer, the plan it parses to or None, the parse error). The
        structured-output method is the first of ``METHODS`` the server takes (a 400/404/422
        answer about it moves on to the next), detected once per server and model and cached."""
        key = (self.base_url or "", self.model_name)
        order = (
            [self.method] if self.method != "auto" else ([_DETECTED[key]] if key in _DETECTED else METHODS)
        )
        for i, method in enumerate(order):
            try:
                out = self._structured(method).invoke(messages)
            except Exception as e:
                if i + 1 < len(order) and _unsupported(e):
                    log.info(
                        "the LLM server does not take %s (%s); trying %s",
                        method,
                        _first_line(e),
                        order[i + 1],
                    )
                    continue
                raise
            _DETECTED[key] = self.method_used = method
            calls = getattr(out, "tool_calls", None) or []
            bad_calls = getattr(out, "invalid_tool_calls", None) or []
            if calls:
                raw = json.dumps(calls[0]["args"])
            elif bad_calls:  # arguments that are not JSON (truncated): repaired below if they can be
                raw = bad_calls[0].get("args") or ""
            else:
                raw = _text(out)
            return (raw, *parse_repaired(raw))
        raise PlannerError("no structured-output method left to try")  # unreachable: the loop raises

    def _few_shot(self) -> list[tuple[str, str]]:
        msgs = []
        for ex in yaml.safe_load(prompt("examples.yaml")) + registry_examples():
            names = [n.strip() for n in ex["scene"].split(",")]
            user = render(
                "user.md",
                skills=skills_text(),
                objects=", ".join(names),
                relations=ex.get("relations") or "none",
                regions=", ".join(REGIONS),
                directions=", ".join(DIRECTIONS),
                command=ex["command"],
            )
            msgs += [("human", user), ("ai", ex["answer"])]
        return msgs

    def warm_up(self) -> bool:
        """One tiny request, so that a local server loads its model now rather than during the
        user's first plan; a failure is only logged (the plan will say what happened)."""
        t0 = time.perf_counter()
        try:
            self._invoke([("human", 'Answer {"subgoals": []}')])
        except Exception as e:  # noqa: BLE001 - any failure: the first plan reports it
            log.info(
                "LLM warm-up failed after %.1f s: %s", time.perf_counter() - t0, _describe(e, self.timeout)
            )
            return False
        log.info("LLM warm-up answered in %.1f s", time.perf_counter() - t0)
        return True

    # ------------------------------------------------------------------ protocol
    def plan(self, command: str, scene: Scene) -> Plan:
        user = render("user.md", skills=skills_text(), command=command, **scene_values(scene))
        return self._ask(user, scene, lambda: self.fallback.plan(command, scene))

    def replan(self, command: str, scene: Scene, history: Sequence[StepOutcome]) -> Plan:
        done = [o.subgoal.instruction for o in history if o.status is Status.DONE]
        failed = [f"{o.subgoal.instruction} ({o.reason})" for o in history if o.status is not Status.DONE]
        user = render(
            "replan.md",
            command=command,
            done="; ".join(done) or "none",
            failed=failed[-1] if failed else "none",
            **{k: v for k, v in scene_values(scene).items() if k in ("objects", "relations")},
        )
        return self._ask(user, scene, lambda: self.fallback.replan(command, scene, history))

    def _ask(self, user: str, scene: Scene, fallback) -> Plan:
        t0 = time.perf_counter()
        messages: list[tuple[str, str]] = [
            (
                "system",
                render(
                    "system.md",
                    bowl=str(CAPACITY["bowl"]),
                    plate=str(CAPACITY["plate"]),
                    tower=str(MAX_TOWER),
                ),
            ),
            *self._few_shot(),
            ("human", user),
        ]
        problems: list[str] = []
        self.last_attempts = 0
        for _ in range(self.retries + 1):
            self.last_attempts += 1
            try:
                raw, parsed, err = self._invoke(messages)
            except PlannerError:
                raise
            except Exception as e:  # network, timeout, HTTP errors: one line, then fallback
                msg = _describe(e, self.timeout)
                if self.fallback is not None:
                    return self._fell_back(fallback, f"the LLM failed: {msg}", t0)
                raise PlannerError(f"LLM planner: {msg}") from None
            if parsed is None:
                problems = [f"the answer is not valid JSON in the schema ({err or 'unparseable'})"]
            elif parsed.refused:
                return Plan(
                    refused=parsed.refused, planner=self.name, latency_ms=(time.perf_counter() - t0) * 1000
                )
            elif parsed.question:
                options = [resolve_name(o, scene) for o in parsed.options]
                if len(options) >= 2 and None not in options:
                    return Plan(
                        question=parsed.question,
                        options=[o for o in options if o],
                        planner=self.name,
                        latency_ms=(time.perf_counter() - t0) * 1000,
                    )
                names = ", ".join(scene.names)
                problems = [f"a question needs two or more options named exactly as in the scene ({names})"]
            else:
                try:
                    plan = validate_plan(parsed.subgoals, scene, planner=self.name)
                    plan.latency_ms = (time.perf_counter() - t0) * 1000
                    return plan
                except PlanError as e:
                    problems = e.problems
            messages += [
                ("ai", raw if isinstance(raw, str) else json.dumps(raw)),
                ("human", render("feedback.md", problems="; ".join(problems))),
            ]
        if self.fallback is not None:
            reason = f"no valid LLM plan in {self.last_attempts} attempts ({'; '.join(problems)[:200]})"
            return self._fell_back(fallback, reason, t0)
        raise PlannerError(
            f"LLM planner gave no valid plan in {self.last_attempts} attempts: {'; '.join(problems)}"
        )

    def _fell_back(self, fallback, reason: str, t0: float) -> Plan:
        """The fallback planner's plan, saying so: its name, why, and the whole wait."""
        plan = fallback()
        plan.planner, plan.fallback = self.fallback.name, reason
        plan.latency_ms = (time.perf_counter() - t0) * 1000
        log.info("fell back to the %s planner: %s", self.fallback.name, reason)
        return plan


def _first_line(e: object) -> str:
    return str(e).strip().splitlines()[0][:200] if e else "unparseable"


def _describe(e: Exception, timeout: float) -> str:
    name = type(e).__name__
    if "Timeout" in name or "timed out" in str(e).lower():
        return f"no answer within {timeout:g} s (timeout)"
    if "Connection" in name:
        return f"cannot reach the LLM server ({_first_line(e)})"
    return f"{name}: {_first_line(e)}"


def _unsupported(e: Exception) -> bool:
    """An HTTP answer saying the server does not take this request's form (not a network error)."""
    return getattr(e, "status_code", None) in (400, 404, 422, 501)


def _text(msg) -> str:
    content = getattr(msg, "content", "") or ""
    return content if isinstance(content, str) else json.dumps(content)


def parse_repaired(text: str) -> tuple[PlanOutput | None, str]:
    """``text`` as a ``PlanOutput``: the JSON object in it (code fences and prose around it
    dropped), trailing commas removed, a truncated answer closed; (None, why) when it is not."""
    body = re.sub(r"```(?:json)?", "", text or "")
    start = body.find("{")
    if start < 0:
        return None, "no JSON object in the answer"
    body = re.sub(r",\s*([}\]])", r"\1", body[start:])
    candidates = [body[: body.rfind("}") + 1]] if "}" in body else []
    candidates.append(_closed(body))
    last = ""
    for c in candidates:
        try:
            return PlanOutput.model_validate(json.loads(c)), ""
        except (ValueError, TypeError) as e:
            last = _first_line(e)
    return None, last


def _closed(text: str) -> str:
    """A truncated JSON text with its open string, objects and lists closed."""
    stack, in_str, escaped = [], False, False
    for ch in text:
        if in_str:
            escaped = ch == "\\" and not escaped
            if ch == '"' and not escaped:
                in_str = False
            continue
        if ch == '"':
            in_str = True
        elif ch in "{[":
            stack.append("}" if ch == "{" else "]")
        elif ch in "}]" and stack:
            stack.pop()
    out = text + ('"' if in_str else "")
    out = re.sub(r",\s*$", "", out)
    out = re.sub(r',\s*"[^"]*"\s*:?\s*$', "", out)  # a key cut off before its value
    return out + "".join(reversed(stack))
