"""``bench``: benchmarks that print JSON figures."""

from __future__ import annotations

import argparse
import json

from rich.table import Table

from vla_agent.cli.common import (
    default_llm,
    names,
    out,
    print_rates,
    progress,
    scale_args,
    scale_options,
)
from vla_agent.cli.options import remote_policy_options


def server_latency_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--server-latency-ms",
        type=float,
        default=None,
        help="serve the VLA locally, every reply this late, and roll out through it (implies --realtime)",
    )


def cmd_bench_expert(a: argparse.Namespace) -> int:
    from vla_agent.agent.bench.skills import ExpertBenchConfig, run_expert_bench

    cfg = ExpertBenchConfig(episodes=a.episodes, seed=a.seed, randomize=not a.no_randomize, robot=a.robot)
    with progress() as prog:
        task = prog.add_task("expert episodes", total=cfg.episodes)
        result = run_expert_bench(cfg, progress=lambda i, n: prog.update(task, completed=i), **scale_args(a))
    if a.json:
        print(json.dumps(result))
    else:
        print_rates(f"scripted experts on the {cfg.robot}, {cfg.episodes} episodes", result, "overall")
        out.print(f"render {result['render_fps']:.0f} frames/s, {result['steps_per_s']:.0f} control steps/s")
    return 0


def cmd_bench_skills(a: argparse.Namespace) -> int:
    from vla_agent.agent.bench.skills import SkillBenchConfig, run_skill_bench

    cfg = SkillBenchConfig(
        policy=a.policy,
        checkpoint=a.checkpoint,
        device=a.device,
        episodes_per_skill=a.episodes_per_skill,
        seed=a.seed,
        execute=a.execute,
        robot=a.robot,
        adapter=a.adapter,
        chunks=a.chunks,
        realtime=a.realtime,
        server_latency_ms=a.server_latency_ms,
        quantize=a.quantize,
        lora=a.lora,
        **({"skills": tuple(a.skills.split(","))} if a.skills else {}),
    )
    with progress() as prog:
        task = prog.add_task(f"{cfg.policy} rollouts", total=cfg.episodes_per_skill * len(cfg.skills))
        result = run_skill_bench(
            cfg, progress=lambda i, n: prog.update(task, completed=i, total=n), **scale_args(a)
        )
    if a.json:
        print(json.dumps(result))
    else:
        title = f"{cfg.policy}: {cfg.episodes_per_skill} episodes per skill, unseen seeds and paraphrases"
        print_rates(title, result, "mean over skills")
        lat = result["latency_ms"]
        out.print(f"inference latency p50 {lat['p50']:.1f} ms, p99 {lat['p99']:.1f} ms")
        out.print(
            f"idle ticks {result['idle_fraction']:.1%} of steps, jerk {result['jerk_m_s3']:.1f} m/s^3 "
            f"({cfg.chunks} chunks)"
        )
    return 0


def cmd_bench_server(a: argparse.Namespace) -> int:
    from vla_agent.agent.bench.server import ServerBenchConfig, run_server_bench

    if a.clients:
        return _bench_clients(a)

    result = run_server_bench(
        ServerBenchConfig(checkpoint=a.checkpoint, device=a.device, requests=a.requests, flooders=a.flooders)
    )
    if a.json:
        print(json.dumps(result))
    else:
        out.print(
            f"in-process p50 {result['in_process_ms']['p50']:.2f} ms, loopback p50 "
            f"{result['loopback_ms']['p50']:.2f} ms, overhead p50 {result['overhead_ms']['p50']:.2f} ms"
        )
        if result["loopback_flooded_ms"]:
            out.print(
                f"beside {result['flooders']} flooding clients: "
                f"p99 {result['loopback_flooded_ms']['p99']:.2f} ms "
                f"({result['flooded_p99_over_idle']:.2f}x the idle p99)"
            )
    return 0


def cmd_bench_capacity(a: argparse.Namespace) -> int:
    from vla_agent.agent.bench.capacity import CapacityBenchConfig, run_capacity_bench, write_capacity

    cfg = CapacityBenchConfig(episodes=a.episodes, seed=a.seed, most=a.most, robot=a.robot)
    with progress() as prog:
        task = prog.add_task("filling containers", total=2 * cfg.episodes)
        result = run_capacity_bench(cfg, progress=lambda i, n: prog.update(task, completed=i))
    if a.write:
        write_capacity(result)
    if a.json:
        print(json.dumps(result))
    else:
        for kind, k in result["capacity"].items():
            shares = ", ".join(f"{n}: {s:.2f}" for n, s in result["share_holding_k"][kind].items())
            out.print(f"a {kind} holds {k} block(s)  (share of episodes holding n blocks: {shares})")
    return 0


def _bench_clients(a: argparse.Namespace) -> int:
    from vla_agent.agent.bench.server import ClientsBenchConfig, run_clients_bench

    cfg = ClientsBenchConfig(
        clients=a.clients, checkpoint=a.checkpoint, device=a.device, batch_window_ms=a.batch_window_ms
    )
    result = run_clients_bench(cfg)
    if a.json:
        print(json.dumps(result))
        return 0
    t = Table(title=f"one policy server, 1-{cfg.clients} clients ({cfg.device})")
    for col in ("clients", "unbatched req/s", "p50 / p99 ms", "batched req/s", "p50 / p99 ms", "mean batch"):
        t.add_column(col, justify="right")
    for n in result["clients"]:
        u, b = result["unbatched"][str(n)], result["batched"][str(n)]
        t.add_row(
            str(n),
            f"{u['requests_per_s']:.0f}",
            f"{u['latency_ms']['p50']:.1f} / {u['latency_ms']['p99']:.1f}",
            f"{b['requests_per_s']:.0f}",
            f"{b['latency_ms']['p50']:.1f} / {b['latency_ms']['p99']:.1f}",
            f"{b['mean_batch']:.1f}",
        )
    out.print(t)
    return 0


def cmd_bench_plot(a: argparse.Namespace) -> int:
    from pathlib import Path

    from vla_agent.agent.bench.plots import load_results, page

    results = load_results(a.results)
    first = Path(a.results[0])
    dest = (
        Path(a.html) if a.html else (first / "result.html" if first.is_dir() else first.with_suffix(".html"))
    )
    html = page(results)
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_text(html)
    out.print(f"charts of {len(results)} result(s): {dest}")
    return 0


def add_bench(sub) -> None:
    from vla_agent.cli.bench_agent import (
        cmd_bench_chains,
        cmd_bench_detector,
        cmd_bench_planner,
        cmd_bench_shield,
    )

    b = sub.add_parser("bench", help="benchmarks that print JSON figures")
    bsub = b.add_subparsers(dest="bench", metavar="BENCH", required=True)
    be = bsub.add_parser(
        "expert",
        help="scripted experts on seeded single-skill tasks",
        description="Run the scripted expert on N seeded single-skill tasks (pick, "
        "place into bowl/onto plate/stack/at region, push) in randomized "
        "scenes with distractors, judged by ground-truth predicates.",
    )
    be.add_argument("--episodes", type=int, default=60, help="number of episodes (cycled over skills)")
    be.add_argument("--seed", type=int, default=0, help="first episode seed")
    be.add_argument("--no-randomize", action="store_true", help="switch domain randomization off")
    be.add_argument("--robot", default="panda", help=f"{names('robot')} (default panda)")
    scale_options(be)
    be.add_argument("--json", action="store_true", help="print figures as one JSON object")
    be.set_defaults(func=cmd_bench_expert)

    bs = bsub.add_parser(
        "skills",
        help="closed-loop skill success of a policy on unseen seeds/paraphrases",
        description="Roll a skill policy out on seeds disjoint from training and "
        "held-out instruction paraphrases; judged by ground truth.",
    )
    bs.add_argument("--policy", default="vla", help=names("policy"))
    bs.add_argument("--checkpoint", default=None, help="checkpoint folder (default: the shipped one)")
    bs.add_argument("--device", default="cpu", help="cpu | cuda")
    bs.add_argument("--episodes-per-skill", type=int, default=50)
    bs.add_argument(
        "--seed", type=int, default=1_000_000, help="first evaluation seed (training uses < 10^6)"
    )
    bs.add_argument("--execute", type=int, default=2, help="actions executed per predicted chunk")
    bs.add_argument("--robot", default="panda", help=f"{names('robot')} (default panda)")
    bs.add_argument(
        "--skills", default=None, help="comma-separated (default: the shipped VLA's: pick,place,push)"
    )
    remote_policy_options(bs)
    server_latency_option(bs)
    bs.add_argument(
        "--quantize",
        default="none",
        choices=["none", "int8", "fp16"],
        help="the in-process VLA: int8 dynamic quantization (CPU) or fp16 (CUDA)",
    )
    bs.add_argument(
        "--lora", default=None, help="a LoRA adapter on top of the checkpoint (vla finetune --lora)"
    )
    scale_options(bs)
    bs.add_argument("--json", action="store_true")
    bs.set_defaults(func=cmd_bench_skills)

    bsv = bsub.add_parser("server", help="policy-server round trip vs in-process inference latency")
    bsv.add_argument("--checkpoint", default=None)
    bsv.add_argument("--device", default="cpu")
    bsv.add_argument("--requests", type=int, default=200)
    bsv.add_argument(
        "--flooders", type=int, default=2, help="hostile clients beside the measured one in a last pass"
    )
    bsv.add_argument(
        "--clients",
        type=int,
        default=0,
        help="instead: throughput and latency with 1, 2, 4, ... N clients at once, batched vs unbatched",
    )
    bsv.add_argument("--batch-window-ms", type=float, default=2.0, help="with --clients: the batching window")
    bsv.add_argument("--json", action="store_true")
    bsv.set_defaults(func=cmd_bench_server)

    bc = bsub.add_parser(
        "chains",
        help="CALVIN-style long-horizon commands of 5 subgoals, end to end",
        description="Generated 5-subgoal commands in randomized scenes, run planner -> policy -> "
        "shield -> sim with the perception detector; ground truth judges each subgoal.",
    )
    bc.add_argument("--episodes", type=int, default=100)
    bc.add_argument("--seed", type=int, default=2_000_000, help="first chain seed")
    bc.add_argument("--policy", default="vla", help=names("policy"))
    bc.add_argument("--checkpoint", default=None, help="VLA checkpoint folder (default: the shipped one)")
    bc.add_argument(
        "--no-home",
        action="store_true",
        help="skills start where the previous one ended (no move home before a pick or push)",
    )
    bc.add_argument("--robot", default="panda", help=f"{names('robot')} (default panda)")
    remote_policy_options(bc)
    server_latency_option(bc)
    bc.add_argument("--planner", default="offline", help=names("planner"))
    bc.add_argument("--detector", default="perception", help=names("detector"))
    bc.add_argument("--llm-model", default=default_llm())
    bc.add_argument("--llm-base-url", default=None)
    scale_options(bc)
    bc.add_argument("--json", action="store_true")
    bc.set_defaults(func=cmd_bench_chains)

    bd = bsub.add_parser(
        "detector", help="precision/recall of the perception success detector vs ground truth"
    )
    bd.add_argument("--episodes", type=int, default=60)
    bd.add_argument("--policy", default="mixed", choices=["mixed", "expert", "vla"], help="mixed: alternate")
    bd.add_argument("--json", action="store_true")
    bd.set_defaults(func=cmd_bench_detector)

    bp = bsub.add_parser(
        "planner",
        help="the planner alone on 357 commands (generated + hand-written): end states, questions, refusals",
        description="Commands across 19 generated categories (basic, synonyms, multi-step, push, "
        "exclusion, ellipsis, politeness, correction, typos, beside, ambiguous, unsafe, ungroundable, "
        "not a task, order, several towers, matching, relative, counts) and 53 hand-written ones, each "
        "with its expected end state, question or refusal; plans are judged symbolically (no simulator).",
    )
    bp.add_argument("--planner", default="offline", help=names("planner"))
    bp.add_argument("--per-category", type=int, default=16, help="generated commands per category")
    bp.add_argument("--seed", type=int, default=3_000_000)
    bp.add_argument("--llm-base-url", default=None)
    bp.add_argument("--json", action="store_true")
    bp.set_defaults(func=cmd_bench_planner)

    bca = bsub.add_parser(
        "capacity",
        help="how many blocks a bowl and a plate really hold (the expert fills them)",
        description="The scripted expert puts blocks into one bowl (then one plate) one after another; "
        "ground truth checks after each placement that all of them still count as in/on it. --write "
        "stores the figures plan validation uses (skills/capacity.json).",
    )
    bca.add_argument("--episodes", type=int, default=10, help="episodes per container kind")
    bca.add_argument("--seed", type=int, default=4_000_000)
    bca.add_argument("--most", type=int, default=4, help="blocks tried per container")
    bca.add_argument("--robot", default="panda", help=f"{names('robot')} (default panda)")
    bca.add_argument("--write", action="store_true", help="store the result for plan validation")
    bca.add_argument("--json", action="store_true")
    bca.set_defaults(func=cmd_bench_capacity)

    bsh = bsub.add_parser(
        "shield",
        help="fuzz the safety shield with adversarial policies; count unsafe measured states",
        description="Adversarial policies (huge, NaN, malformed, wrist and tilt ramps, drift to every "
        "face and corner of the workspace, random walks) drive the simulated arm through the shield; "
        "the backend audits the measured state after every step. Exit 1 if any state left the envelope.",
    )
    bsh.add_argument("--episodes", type=int, default=500, help="episodes (cycling through the adversaries)")
    bsh.add_argument("--steps", type=int, default=200, help="control steps per episode")
    bsh.add_argument("--seed", type=int, default=3_000_000, help="first episode seed")
    bsh.add_argument("--adversary", default=None, help="run only this adversary (e.g. yaw-ramp-0.25)")
    bsh.add_argument("--json", action="store_true")
    bsh.set_defaults(func=cmd_bench_shield)

    bpl = bsub.add_parser(
        "plot",
        help="charts of benchmark results as one HTML page (several files side by side)",
        description="Draw what bench chains, skills, expert or server --clients printed with --json "
        "(or a run folder's result.json): success by skill, by subgoal position, where chains break, "
        "throughput and latency by clients. Several files of one benchmark share each chart, one "
        "colour per file. Inline SVG: opens offline in any browser.",
    )
    bpl.add_argument("results", nargs="+", help="benchmark JSON files or run folders (--out DIR)")
    bpl.add_argument("--html", default=None, help="the page to write (default: beside the first result)")
    bpl.set_defaults(func=cmd_bench_plot)
