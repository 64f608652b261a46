"""Routing decisions per second on a large centre: 50 queues, 500 agents, 200 rules (target: p99 < 1 ms).

    .venv/bin/python bench/routing.py [--decisions 20000] [--seed 7]

A synthetic routing.yml is generated (skills with fallbacks, queues with calendars, agents with levels and mixed
statuses, caller lists, and rules on intents, entities, confidence, caller lists, time windows, queue state and
failed turns); requests draw random intents, callers and times. Each decision is timed alone with
``perf_counter_ns``, including the snapshot of the live state it reads, as the call session does.
"""

from __future__ import annotations

import argparse
import datetime
import random
import statistics
import sys
import time
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

# run as a script, this file's folder comes first on sys.path and its name would hide the routing package
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

from pydantic import TypeAdapter  # noqa: E402

from routing.actions import Action  # noqa: E402
from routing.engine import Router, RouteRequest  # noqa: E402
from routing.live import LiveState  # noqa: E402
from routing.routing_config import AGENT_STATUSES, RoutingConfig  # noqa: E402

SKILLS = 40
QUEUES = 50
AGENTS = 500
RULES = 200
INTENTS = 60


def synthetic_config(rng: random.Random) -> tuple[dict[str, Any], dict[str, Any]]:
    skills = {f"s{i}": ({"fallback": f"s{i + 1}"} if i % 4 != 3 else {}) for i in range(SKILLS)}
    calendars = {
        "office": {"weekly": {"mon-fri": ["09:00-18:00"], "sat": ["09:00-12:00"]}, "public_holidays": "fr"},
        "late": {"weekly": {"mon-fri": ["08:00-20:00"]}, "public_holidays": "fr"},
        "always": {},
    }
    queues = {}
    for q in range(QUEUES):
        served = sorted({f"s{q % SKILLS}", f"s{rng.randrange(SKILLS)}"})
        queues[f"q{q}"] = {
            "skills": served,
            "target": {"type": "queue", "value": f"q{q}"},
            "hours": rng.choice(list(calendars)),
            "max_length": rng.choice([0, 5, 20]),
            "max_wait_s": rng.choice([120, 600]),
        }
    agents = {
        f"a{n}": {
            "skills": {f"s{s}": rng.randint(1, 5) for s in rng.sample(range(SKILLS), 3)},
            "status": rng.choice(AGENT_STATUSES),
        }
        for n in range(AGENTS)
    }
    caller_lists = {
        "vip": [f"+3361{n:07d}" for n in range(300)],
        "blocked": ["+33899*", "+33897*"],
    }
    rules = []
    for r in range(RULES - 1):
        when: dict[str, Any] = {"intent": [f"i{rng.randrange(INTENTS)}" for _ in range(2)]}
        kind = r % 6
        if kind == 0:
            when["caller_in"] = "vip"
        elif kind == 1:
            when["time"] = {"days": ["mon-fri"], "between": "18:00-09:00"}
        elif kind == 2:
            when["queue"] = {"skill": f"s{rng.randrange(SKILLS)}", "estimated_wait_s": {"min": 300}}
        elif kind == 3:
            when["entities"] = ["amount"]
        elif kind == 4:
            when["confidence"] = {"max": 0.6}
        else:
            when["failed_turns"] = {"min": 2}
        then: dict[str, Any] = (
            {"action": "transfer", "skill": f"s{rng.randrange(SKILLS)}", "priority": rng.randint(0, 5)}
            if r % 3
            else {"action": "overflow", "reason": "queue_full"}
        )
        rules.append({"id": f"r{r}", "when": when, "then": then})
    rules.insert(0, {"id": "blocked", "when": {"caller_in": "blocked"}, "then": {"action": "hangup"}})
    config = {
        "timezone": "Europe/Paris",
        "skills": skills,
        "calendars": calendars,
        "queues": queues,
        "agents": agents,
        "caller_lists": caller_lists,
        "rules": rules,
        "default": {"action": "overflow", "reason": "not_understood"},
        "failover_skill": "s0",
    }
    intents = {f"i{i}": {"action": "transfer", "skill": f"s{i % SKILLS}"} for i in range(INTENTS)}
    return config, intents


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--decisions", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    raw, intents = synthetic_config(rng)
    started = time.perf_counter()
    config = RoutingConfig.model_validate(raw)
    router = Router(config, TypeAdapter(dict[str, Action]).validate_python(intents))
    load_ms = (time.perf_counter() - started) * 1000
    live = LiveState(config)
    for n in range(300):  # calls already waiting in queues
        live.enqueue(f"w{n}", f"q{rng.randrange(QUEUES)}", rng.randint(0, 5))
    zone = ZoneInfo("Europe/Paris")
    base = datetime.datetime(2026, 12, 1, tzinfo=zone)
    requests = [
        (
            RouteRequest(
                f"i{rng.randrange(INTENTS)}" if rng.random() > 0.05 else "nlu_fallback",
                rng.random(),
                {"amount": "100 EUR"} if rng.random() < 0.3 else {},
                rng.choice(["+33611111111", f"+3361{rng.randrange(600):07d}", "+33899000000", "+33622222222"]),
                rng.choice([0, 0, 1, 2, 3]),
            ),
            base + datetime.timedelta(minutes=rng.randrange(7 * 24 * 60)),
        )
        for _ in range(args.decisions)
    ]
    for request, at in requests[:500]:  # warm-up
        router.route(request, at, live.snapshot())
    timings = []
    outcomes: dict[str, int] = {}
    wall = time.perf_counter()
    for n, (request, at) in enumerate(requests):
        if n % 50 == 0:  # agents change status now and then, as the API reports them
            live.set_status(f"a{rng.randrange(AGENTS)}", rng.choice(AGENT_STATUSES))
        t0 = time.perf_counter_ns()
        routed = router.route(request, at, live.snapshot())
        timings.append(time.perf_counter_ns() - t0)
        kind = type(routed.outcome).__name__
        outcomes[kind] = outcomes.get(kind, 0) + 1
    wall = time.perf_counter() - wall
    timings.sort()
    us = [t / 1000 for t in timings]

    def pct(p: float) -> float:
        return us[min(len(us) - 1, int(len(us) * p))]

    print(f"config: {QUEUES} queues, {AGENTS} agents, {RULES} rules, {SKILLS} skills (loaded in {load_ms:.0f} ms)")
    print(f"decisions: {len(us)} in {wall:.2f} s = {len(us) / wall:,.0f} per second (one core)")
    print(
        f"latency per decision: median {statistics.median(us):.1f} us, p95 {pct(0.95):.1f} us, "
        f"p99 {pct(0.99):.1f} us, max {us[-1]:.1f} us"
    )
    print(f"target p99 < 1000 us: {'met' if pct(0.99) < 1000 else 'NOT met'}")
    print("outcomes: " + ", ".join(f"{k} {v}" for k, v in sorted(outcomes.items())))


if __name__ == "__main__":
    main()
