"""routing.yml validation: every mistake is a clear error naming the file, the key and the fix — at startup
and from `callbot routing check`, which exits non-zero with the same message."""

from __future__ import annotations

import copy
import json
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from callbot.errors import ConfigError
from routing.bot_folder import load_bot_folder
from tests.conftest import ROOT

FR = ROOT / "bots" / "fr"
ROUTING = yaml.safe_load((FR / "routing.yml").read_text(encoding="utf-8"))
BOT = yaml.safe_load((FR / "bot.yml").read_text(encoding="utf-8"))

Edit = Callable[[dict[str, Any], dict[str, Any]], None]


def _set(path: str, value: Any, file: str = "routing") -> Edit:
    def edit(routing: dict[str, Any], bot: dict[str, Any]) -> None:
        node = routing if file == "routing" else bot
        *parents, last = path.split("/")
        for key in parents:
            node = node[int(key)] if isinstance(node, list) else node[key]
        if value is _DELETE:
            del node[last]
        elif isinstance(node, list):
            node[int(last)] = value
        else:
            node[last] = value

    return edit


_DELETE = object()

# (id, edit, file named in the message, fragments of the message)
DEFECTS: list[tuple[str, Edit, str, list[str]]] = [
    (
        "unknown_skill_in_intent",
        _set("intents/talk_to_advisor", {"action": "transfer", "skill": "sales"}, "bot"),
        "bot.yml",
        ["intents.talk_to_advisor.skill: unknown skill 'sales'", "define it under 'skills'"],
    ),
    (
        "unknown_skill_in_queue",
        _set("queues/advisors/skills", ["general", "sales"]),
        "routing.yml",
        ["queues.advisors.skills: unknown skill 'sales'"],
    ),
    (
        "unknown_skill_in_agent",
        _set("agents/c.martin/skills", {"sales": 3}),
        "routing.yml",
        ["agents.c.martin.skills: unknown skill 'sales'"],
    ),
    (
        "unknown_skill_in_rule",
        _set("rules/1/then", {"action": "transfer", "skill": "vip"}),
        "routing.yml",
        ["rules[1] 'vip_to_premium'.then.skill: unknown skill 'vip'"],
    ),
    ("rule_without_action", _set("rules/0/then", _DELETE), "routing.yml", ["rules[0] 'blocked_callers': no action"]),
    (
        "catch_all_rule_not_last",
        _set("rules/0/when", _DELETE),
        "routing.yml",
        ["rules[0] 'blocked_callers': has no 'when'", "never apply"],
    ),
    ("duplicate_rule_id", _set("rules/2/id", "vip_to_premium"), "routing.yml", ["used twice"]),
    ("missing_default", _set("default", _DELETE), "routing.yml", ["default: required"]),
    (
        "overlapping_holidays",
        _set(
            "calendars/office/holidays",
            [{"name": "Pont", "date": "2027-05-07"}, {"name": "Séminaire", "from": "2027-05-05", "to": "2027-05-07"}],
        ),
        "routing.yml",
        ["calendars.office: holidays 'Séminaire' and 'Pont' overlap"],
    ),
    (
        "holiday_overlaps_public_holiday",
        _set("calendars/office/holidays", [{"name": "Noël", "date": "2026-12-25"}]),
        "routing.yml",
        ["overlaps the public holiday 'Noël'"],
    ),
    (
        "unknown_public_holiday_calendar",
        _set("calendars/office/public_holidays", "fr-paris"),
        "routing.yml",
        ["calendars.office.public_holidays: unknown public holiday calendar 'fr-paris'; known: fr, fr-alsace-moselle,"],
    ),
    (
        "invalid_time_zone",
        _set("timezone", "Europe/Pari"),
        "routing.yml",
        ["timezone: unknown time zone 'Europe/Pari'", "Europe/Paris"],
    ),
    (
        "fallback_loop",
        _set("skills/general", {"fallback": "premium"}),
        "routing.yml",
        ["fallback loop", "premium -> general -> premium"],
    ),
    (
        "rule_fallback_loop",
        _set("rules/1/then", {"action": "transfer", "skill": "general", "fallback": "premium"}),
        "routing.yml",
        ["rules[1] 'vip_to_premium'.then.fallback: fallback loop general -> premium -> general"],
    ),
    ("unknown_fallback", _set("skills/claims/fallback", "legal"), "routing.yml", ["skills.claims.fallback", "'legal'"]),
    ("skill_without_queue", _set("skills/legal", {}), "routing.yml", ["skills.legal: no queue serves it"]),
    ("unknown_calendar", _set("queues/advisors/hours", "bureau"), "routing.yml", ["queues.advisors.hours", "'bureau'"]),
    (
        "unknown_caller_list",
        _set("rules/0/when", {"caller_in": "vips"}),
        "routing.yml",
        ["unknown caller list 'vips'"],
    ),
    ("bad_caller_number", _set("caller_lists/vip", ["0611111111"]), "routing.yml", ["vip: '0611111111'", "E.164"]),
    ("bad_level", _set("agents/c.martin/skills", {"general": 7}), "routing.yml", ["level 7", "1 to 5"]),
    (
        "bad_target",
        _set("queues/collections/target", {"type": "number", "value": "01 00 00 00 01"}),
        "routing.yml",
        ["queues.collections.target", "E.164"],
    ),
    (
        "unknown_intent_in_rule",
        _set("rules/2/when", {"intent": "talk_to_adviser"}),
        "routing.yml",
        ["no intent 'talk_to_adviser' in nlu.yml"],
    ),
    (
        "unknown_response_in_rule",
        _set("rules/0/then", {"action": "hangup", "response": "utter_nope"}),
        "routing.yml",
        ["rules[0] 'blocked_callers'.then.response: unknown response 'utter_nope'"],
    ),
    ("unknown_failover_skill", _set("failover_skill", "nobody"), "routing.yml", ["failover_skill: unknown skill"]),
    ("bad_time_window", _set("rules/4/when/time", {"between": "9h-18h"}), "routing.yml", ["HH:MM-HH:MM"]),
    ("whisper_slot", _set("queues/fraud/whisper", "Appel de {name}"), "routing.yml", ["unknown slot", "name"]),
    ("typo_key", _set("queues/advisors/max_lenght", 3), "routing.yml", ["queues.advisors.max_lenght: unknown key"]),
    (
        "intent_not_trained",
        _set("intents/weather", {"action": "answer", "response": "utter_greet"}, "bot"),
        "bot.yml",
        ["intents.weather: no such intent in nlu.yml"],
    ),
]


def _folder(tmp_path: Path, edit: Edit | None) -> Path:
    folder = tmp_path / "bot"
    shutil.copytree(FR, folder, ignore=shutil.ignore_patterns(".rasa", "tests"))
    routing, bot = copy.deepcopy(ROUTING), copy.deepcopy(BOT)
    if edit is not None:
        edit(routing, bot)
    (folder / "routing.yml").write_text(yaml.safe_dump(routing, allow_unicode=True, sort_keys=False), encoding="utf-8")
    (folder / "bot.yml").write_text(yaml.safe_dump(bot, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return folder


@pytest.mark.parametrize(("edit", "file", "fragments"), [d[1:] for d in DEFECTS], ids=[d[0] for d in DEFECTS])
def test_defects_are_named(tmp_path: Path, edit: Edit, file: str, fragments: list[str]) -> None:
    folder = _folder(tmp_path, edit)
    with pytest.raises(ConfigError) as excinfo:
        load_bot_folder(folder)
    message = str(excinfo.value)
    assert f"{folder / file}:" in message
    for fragment in fragments:
        assert fragment in message, message


def test_the_example_bots_are_valid() -> None:
    for lang in ("fr", "en"):
        folder = load_bot_folder(ROOT / "bots" / lang)
        assert folder.routing.rules and folder.routing.agents
        assert set(folder.routing.skills) == {s for q in folder.routing.queues.values() for s in q.skills}


def _check(folder: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "callbot.cli", "routing", "check", "--bot", str(folder)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )


@pytest.mark.parametrize(
    "defect",
    ["unknown_skill_in_queue", "rule_without_action", "overlapping_holidays", "invalid_time_zone", "fallback_loop"],
)
def test_routing_check_exits_non_zero_with_the_startup_message(tmp_path: Path, defect: str) -> None:
    edit = next(d[1] for d in DEFECTS if d[0] == defect)
    folder = _folder(tmp_path, edit)
    with pytest.raises(ConfigError) as excinfo:
        load_bot_folder(folder)
    completed = _check(folder)
    assert completed.returncode == 1
    assert completed.stderr.strip() == f"callbot: error: {excinfo.value}"


def test_routing_check_on_a_valid_folder(tmp_path: Path) -> None:
    completed = _check(_folder(tmp_path, None))
    assert completed.returncode == 0, completed.stderr
    assert "ok — 22 intents, 8 skills, 8 queues, 12 agents, 6 rules (Europe/Paris)" in completed.stdout


def test_routing_explain(tmp_path: Path) -> None:
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "callbot.cli",
            "routing",
            "explain",
            "--bot",
            str(FR),
            "--intent",
            "talk_to_advisor",
            "--at",
            "2026-12-25T10:00",
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    lines = completed.stdout.splitlines()
    assert lines[0] == "call at Friday 2026-12-25 10:00 CET (Europe/Paris), intent talk_to_advisor"
    assert lines[1] == "decision: overflow to the mailbox, reason closed"
    assert lines[2] == "rule: intent:talk_to_advisor"
    assert "tried skill general in queue advisors: closed (public holiday Noël (2026-12-25)" in lines[3]


def test_routing_check_json_lists_what_the_folder_defines() -> None:
    completed = subprocess.run(
        [sys.executable, "-m", "callbot.cli", "routing", "check", "--json", "--bot", str(ROOT / "bots" / "fr")],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    summary = json.loads(completed.stdout)
    folder = load_bot_folder(ROOT / "bots" / "fr")
    assert summary["ok"] is True and summary["language"] == "fr"
    assert summary["queues"] == sorted(folder.routing.queues)
    assert summary["rules"] == [rule.id for rule in folder.routing.rules]
