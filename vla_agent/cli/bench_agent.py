"""``bench chains|detector|shield``: the agent's benchmarks (long-horizon commands, the success
detector, the safety shield)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from rich.table import Table

from vla_agent.cli.common import (
    out,
    progress,
    scale_args,
)


def cmd_bench_chains(a: argparse.Namespace) -> int:
    from vla_agent.agent.bench.chains import ChainBenchConfig, run_chain_bench

    cfg = ChainBenchConfig(
        episodes=a.episodes,
        seed=a.seed,
        policy=a.policy,
        checkpoint=Path(a.checkpoint) if a.checkpoint else None,
        planner=a.planner,
        detector=a.detector,
        llm_model=a.llm_model,
        llm_base_url=a.llm_base_url,
        home=not a.no_home,
        robot=a.robot,
        adapter=a.adapter,
        chunks=a.chunks,
        realtime=a.realtime,
        server_latency_ms=a.server_latency_ms,
    )
    with progress() as prog:
        task = prog.add_task(f"chains ({cfg.policy}, {cfg.robot})", total=cfg.episodes)
        result = run_chain_bench(
            cfg,
            progress=lambda i, n: prog.update(task, completed=i),
            **scale_args(a),
        )
    if a.json:
        print(json.dumps(result))
        return 0
    title = f"{cfg.episodes} chains of 5 on the {cfg.robot}, policy {cfg.policy}, planner {cfg.planner}"
    t = Table(title=title)
    t.add_column("metric")
    t.add_column("value", justify="right")
    t.add_row("average completed length (0-5)", f"{result['avg_len']:.2f}")
    t.add_row("full-chain success", f"{result['chain_success']:.3f}")
    for k, v in enumerate(result["per_position"], 1):
        t.add_row(f"  success at position {k}", f"{v:.3f}")
    t.add_row("planner accuracy", f"{result['planner_accuracy']:.3f}")
    t.add_row("detector disagreements", f"{result['detector']['disagreement_rate']:.3f}")
    t.add_row("shield interventions", str(result["shield_interventions"]))
    t.add_row("unsafe actions reaching the backend", str(result["unsafe_actions_reached_backend"]))
    t.add_row("unsafe measured states", str(result["unsafe_states_reached"]))
    t.add_row("seconds per subgoal", f"{result['seconds_per_subgoal']:.2f}")
    t.add_row("simulated seconds per wall second", f"{result['simulated_s_per_wall_s']:.2f}")
    oh = result["overhead_ms_per_step"]
    t.add_row("orchestrator overhead/step p50 / p99 (ms)", f"{oh['p50']:.2f} / {oh['p99']:.2f}")
    out.print(t)
    return 0


def cmd_bench_detector(a: argparse.Namespace) -> int:
    from vla_agent.agent.bench.detector import DetectorBenchConfig, run_detector_bench

    cfg = DetectorBenchConfig(episodes=a.episodes, policy=a.policy)
    with progress() as prog:
        task = prog.add_task("detector episodes", total=cfg.episodes)
        result = run_detector_bench(cfg, progress=lambda i, n: prog.update(task, completed=i))
    if a.json:
        print(json.dumps(result))
    else:
        for level in ("per_subgoal", "per_step"):
            r = result[level]
            out.print(
                f"{level}: precision {r['precision']:.3f}, recall {r['recall']:.3f} "
                f"({r['positives']} positives, {r['negatives']} negatives)"
            )
    return 0


def cmd_bench_shield(a: argparse.Namespace) -> int:
    from vla_agent.agent.bench.shield import ShieldBenchConfig, run_shield_bench

    cfg = ShieldBenchConfig(episodes=a.episodes, steps=a.steps, seed=a.seed, adversary=a.adversary)
    with progress() as prog:
        task = prog.add_task("adversarial episodes", total=cfg.episodes)
        result = run_shield_bench(cfg, progress=lambda i, n: prog.update(task, completed=i))
    if a.json:
        print(json.dumps(result))
        return 0 if result["unsafe_states_reached"] == 0 else 1
    t = Table(title=f"shield under {cfg.episodes} adversarial episodes ({result['actions']} actions)")
    t.add_column("adversary")
    for col in ("actions", "interventions", "holds", "unsafe states", "worst mm / rad"):
        t.add_column(col, justify="right")
    for name, row in result["per_adversary"].items():
        w = row["worst"]
        t.add_row(
            name,
            str(row["actions"]),
            str(row["interventions"]),
            str(row["holds"]),
            str(row["unsafe_states"]),
            f"{w['position_mm']:.1f} / {max(w['tilt_rad'], w['joint_rad']):.3f}",
        )
    out.print(t)
    w = result["worst_state_excursion"]
    out.print(
        f"{result['actions_per_s']:.0f} actions/s; "
        f"unsafe measured states: {result['unsafe_states_reached']}; "
        f"unsafe actions reaching the backend: {result['unsafe_actions_reached_backend']}; worst excursion "
        f"{w['position_mm']:.2f} mm, tilt {w['tilt_rad']:.3f} rad, joint {w['joint_rad']:.3f} rad"
    )
    return 0 if result["unsafe_states_reached"] == 0 else 1


# ---------------------------------------------------------------------- parsers


def cmd_bench_planner(a: argparse.Namespace) -> int:
    from vla_agent.agent.bench.planner import PlannerBenchConfig, run_planner_bench

    cfg = PlannerBenchConfig(
        planner=a.planner, per_category=a.per_category, seed=a.seed, llm_base_url=a.llm_base_url
    )
    result = run_planner_bench(cfg)
    if a.json:
        print(json.dumps(result))
        return 0
    t = Table(title=f"planner {cfg.planner}: {result['commands']} commands")
    t.add_column("category")
    t.add_column("accuracy", justify="right")
    for k, v in result["per_category"].items():
        t.add_row(k, f"{v:.2f}")
    t.add_row("[b]all[/b]", f"[b]{result['accuracy']:.3f}[/b]")
    out.print(t)
    lat = result["latency_ms"]
    r = result
    out.print(
        f"wrong-object plans {r['wrong_object_plans']}, question recall {r['question_recall']:.2f}, "
        f"refusal recall {r['refusal_recall']:.2f}, latency p50 {lat['p50']:.2f} / p99 {lat['p99']:.2f} ms"
    )
    return 0
