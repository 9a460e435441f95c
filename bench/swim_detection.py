"""SWIM failure detection, measured in the deterministic simulator (`cluster.swim_sim`).

    python bench/swim_detection.py            # full: about 3-5 minutes on 2 cores
    python bench/swim_detection.py --quick    # a first look: under a minute
    python bench/swim_detection.py --json out.json

Two tables:

1. **Detection** at 10, 100 and 1,000 nodes on a loss-free network: crash one random node at a
   time (several per simulation, several seeds) and report, in protocol periods (1 s), when the
   first node suspected it, when the first declared it dead, and when every running node had —
   p50 and p99 over all kills (nearest rank; with ~20 kills p99 is the worst one). Next to
   them, Lifeguard's suspicion window `min = 4·max(1, log10 n)`, `max = 6·min`: every kill
   should be dead everywhere within `max` plus a few periods, and in practice near `min`.
2. **False positives** at 100 nodes under 10% and 20% uniform message loss, several seeds of
   `--periods` periods each: how often a running node was declared dead by anyone (per 1,000
   node-periods, and as a count), next to how many distinct suspicions the loss caused (every
   one false: nothing crashes; each refuted in time unless it shows up as false deaths) and
   the message cost per node per period.

These are simulation figures (virtual time, no event-loop jitter); the real-process figures
(kill -9 over the real transport) come from the runtime's own bench.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import random
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cluster.swim import SwimConfig
from cluster.swim_sim import Network, Simulation


def percentile(values: list[float], fraction: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


def detection(n: int, seeds: int, kills_per_run: int) -> dict[str, Any]:
    period = SwimConfig().protocol_period
    samples: dict[str, list[float]] = {"first_suspect": [], "first_dead": [], "all_dead": []}
    undetected = false_positives = 0
    suspicion_min = 4 * max(1.0, math.log10(n))
    for seed in range(seeds):
        sim = Simulation(n, seed=seed)
        sim.run_until(10.0)
        victims = random.Random(seed).sample([node.node_id for node in sim.nodes],
                                             kills_per_run)
        for victim in victims:
            found = sim.measure_crash(victim, within=6 * suspicion_min + 30)
            if found.all_dead is None:
                undetected += 1
            for name, values in samples.items():
                value = getattr(found, name)
                if value is not None:
                    values.append(value / period)
            sim.run_for(5.0)  # let the news settle before the next kill
        false_positives += len(sim.false_positives)
    return {
        "nodes": n, "kills": seeds * kills_per_run, "undetected": undetected,
        "false_positives": false_positives,
        "suspicion_min": suspicion_min, "suspicion_max": 6 * suspicion_min,
        **{f"{name}_p50": percentile(v, 0.50) for name, v in samples.items()},
        **{f"{name}_p99": percentile(v, 0.99) for name, v in samples.items()},
    }


def false_positive_rate(n: int, loss: float, seeds: int, periods: int) -> dict[str, Any]:
    period = SwimConfig().protocol_period
    false_deaths = suspicions = messages = runs_with_false_deaths = 0
    for seed in range(seeds):
        sim = Simulation(n, seed=1000 + seed, network=Network(loss=loss))
        sim.run_until(periods * period)
        false_deaths += len(sim.false_positives)
        runs_with_false_deaths += bool(sim.false_positives)
        suspicions += len(sim.suspicions)
        messages += sim.messages_sent
    node_periods = n * periods * seeds
    return {
        "nodes": n, "loss": loss, "runs": seeds, "periods": periods,
        "false_deaths": false_deaths, "runs_with_false_deaths": runs_with_false_deaths,
        "false_deaths_per_1000_node_periods": 1000 * false_deaths / node_periods,
        "suspicions_per_1000_node_periods": 1000 * suspicions / node_periods,
        "messages_per_node_period": messages / node_periods,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer seeds and periods")
    parser.add_argument("--periods", type=int, help="periods per false-positive run")
    parser.add_argument("--json", type=Path, help="also write every figure here")
    args = parser.parse_args()
    runs = {10: (10, 2), 100: (10, 2), 1000: (2, 2)} if args.quick else \
        {10: (20, 3), 100: (20, 3), 1000: (4, 5)}
    loss_seeds = 2 if args.quick else 5
    periods = args.periods or (100 if args.quick else 300)
    started = time.monotonic()

    print("SWIM crash detection, in protocol periods (simulation, no loss)")
    print(f"{'nodes':>6} {'kills':>5} {'suspect p50/p99':>16} {'1st dead p50/p99':>17} "
          f"{'all dead p50/p99':>17} {'susp. min/max':>14} {'missed':>6} {'false':>5}")
    detections = []
    for n, (seeds, kills) in runs.items():
        row = detection(n, seeds, kills)
        detections.append(row)
        print(f"{n:>6} {row['kills']:>5} "
              f"{row['first_suspect_p50']:>7.1f} / {row['first_suspect_p99']:<6.1f} "
              f"{row['first_dead_p50']:>7.1f} / {row['first_dead_p99']:<7.1f} "
              f"{row['all_dead_p50']:>7.1f} / {row['all_dead_p99']:<7.1f} "
              f"{row['suspicion_min']:>5.1f} / {row['suspicion_max']:<6.1f} "
              f"{row['undetected']:>6} {row['false_positives']:>5}", flush=True)

    print(f"\nFalse 'dead' under message loss (100 nodes, {loss_seeds} runs x {periods} periods)")
    print(f"{'loss':>5} {'false deaths':>12} {'runs with any':>13} {'per 1k node-periods':>19} "
          f"{'suspicions per 1k node-periods':>30} {'msgs/node-period':>16}")
    losses = []
    for loss in (0.10, 0.20):
        row = false_positive_rate(100, loss, loss_seeds, periods)
        losses.append(row)
        print(f"{loss:>5.0%} {row['false_deaths']:>12} "
              f"{row['runs_with_false_deaths']:>6} / {row['runs']:<5} "
              f"{row['false_deaths_per_1000_node_periods']:>19.4f} "
              f"{row['suspicions_per_1000_node_periods']:>30.1f} "
              f"{row['messages_per_node_period']:>16.1f}", flush=True)
    print(f"\n({time.monotonic() - started:.0f} s on {platform.python_implementation()} "
          f"{platform.python_version()})")
    if args.json:
        args.json.write_text(json.dumps({"detection": detections, "loss": losses,
                                         "config": SwimConfig().__dict__}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
