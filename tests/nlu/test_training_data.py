"""Training data: reading Rasa YAML and CSV, splits, and the example bots' own data."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pytest
import yaml

from callbot.errors import ConfigError
from nlu.training_data import (
    load_training_data,
    plain_text,
    stratified_folds,
    stratified_split,
    write_rasa_yaml,
)
from routing.bot_config import load_bot_config
from tests.conftest import ROOT

BOTS = ["fr", "en"]
_ANNOTATION = re.compile(r"\[([^\]]*)\]\(([^)]*)\)")


def test_plain_text_removes_annotations():
    assert plain_text("mon contrat [456789](contract_number) svp") == "mon contrat 456789 svp"
    assert plain_text('ma [cb]{"entity": "card_type"} est perdue') == "ma cb est perdue"


def test_yaml_round_trip_keeps_annotations_and_extras(tmp_path):
    data = load_training_data(ROOT / "bots" / "fr" / "nlu.yml")
    write_rasa_yaml(data, tmp_path / "nlu.yml")
    again = load_training_data(tmp_path / "nlu.yml")
    assert sorted(again.examples, key=lambda e: (e.intent, e.annotated)) == sorted(
        data.examples, key=lambda e: (e.intent, e.annotated)
    )
    assert again.extras == data.extras


def test_csv_benchmark_format(tmp_path):
    path = tmp_path / "data.csv"
    path.write_text('text,category\n"where is my card [urgent]?",card_arrival\nhi,greet\n', encoding="utf-8")
    data = load_training_data(path)
    assert [(e.text, e.intent) for e in data.examples] == [
        ("where is my card [urgent]?", "card_arrival"),
        ("hi", "greet"),
    ]
    assert "[" not in data.examples[0].annotated, "brackets would read as an entity annotation in Rasa YAML"
    (tmp_path / "bad.csv").write_text("sentence,label\nhi,greet\n")
    with pytest.raises(ConfigError, match="'text' column"):
        load_training_data(tmp_path / "bad.csv")


def test_stratified_folds_are_balanced_disjoint_and_deterministic():
    data = load_training_data(ROOT / "bots" / "fr" / "nlu.yml")
    folds = stratified_folds(data.examples, 5)
    assert stratified_folds(data.examples, 5) == folds
    assert sum(len(f) for f in folds) == len(data.examples)
    assert len({e for f in folds for e in f}) == len(set(data.examples))
    for intent in Counter(e.intent for e in data.examples):
        per_fold = [sum(e.intent == intent for e in f) for f in folds]
        assert max(per_fold) - min(per_fold) <= 1, intent
    train, test = stratified_split(data, 0.2)
    assert len(test.examples) == pytest.approx(len(data.examples) * 0.2, abs=len(data.intents))
    assert not set(train.examples) & set(test.examples)


def test_not_training_data(tmp_path):
    (tmp_path / "x.yml").write_text("rules: []\n")
    with pytest.raises(ConfigError, match="nlu:"):
        load_training_data(tmp_path / "x.yml")
    (tmp_path / "empty.yml").write_text('version: "3.1"\nnlu:\n- intent: greet\n  examples: |\n')
    with pytest.raises(ConfigError, match="no training examples"):
        load_training_data(tmp_path / "empty.yml")


@pytest.mark.parametrize("lang", BOTS)
def test_example_bot_covers_a_real_line(lang):
    data = load_training_data(ROOT / "bots" / lang / "nlu.yml")
    counts = Counter(e.intent for e in data.examples)
    assert len(counts) >= 20
    assert min(counts.values()) >= 25, counts.most_common()[-3:]
    assert "out_of_scope" in counts
    texts = [e.text for e in data.examples]
    assert len(texts) == len(set(texts)), "duplicate training examples"
    entities = {name for e in data.examples for _, name in _ANNOTATION.findall(e.annotated)}
    assert {"contract_number", "amount", "date", "phone_number", "card_type"} <= entities


@pytest.mark.parametrize("lang", BOTS)
def test_every_intent_is_routed_and_every_routed_intent_is_trained(lang):
    bot = load_bot_config(ROOT / "bots" / lang)
    trained = set(load_training_data(ROOT / "bots" / lang / "nlu.yml").intents)
    assert set(bot.intents) == trained
    assert {o.intent for m in bot.menus.values() for o in m.options.values() if o.intent} <= trained


@pytest.mark.parametrize("lang", BOTS)
def test_rasa_validates_the_training_data(lang, tmp_path):
    """`rasa data validate`, with a domain listing the bot's intents and entities."""
    import subprocess

    from nlu.training import rasa_environment, rasa_executable
    from tests.conftest import RASA_VENV

    data = load_training_data(ROOT / "bots" / lang / "nlu.yml")
    entities = sorted({name for e in data.examples for _, name in _ANNOTATION.findall(e.annotated)})
    domain = tmp_path / "domain.yml"
    domain.write_text(yaml.safe_dump({"version": "3.1", "intents": data.intents, "entities": entities}))
    completed = subprocess.run(
        [
            str(rasa_executable(RASA_VENV)),
            "data",
            "validate",
            "--data",
            str(ROOT / "bots" / lang / "nlu.yml"),
            "--config",
            str(ROOT / "bots" / lang / "config.yml"),
            "--domain",
            str(domain),
        ],
        capture_output=True,
        text=True,
        env=rasa_environment(),
        cwd=tmp_path,
        check=False,
    )
    assert completed.returncode == 0, completed.stdout[-2000:] + completed.stderr[-2000:]


def test_config_names_the_bot_language():
    for lang in BOTS:
        config = yaml.safe_load((ROOT / "bots" / lang / "config.yml").read_text())
        assert config["language"] == lang == load_bot_config(ROOT / "bots" / lang).language
        off_topic = Path(ROOT / "bots" / lang / "tests" / "out_of_scope.txt").read_text(encoding="utf-8").splitlines()
        assert len({line.strip() for line in off_topic if line.strip()}) >= 100, "held-out off-topic sentences"
