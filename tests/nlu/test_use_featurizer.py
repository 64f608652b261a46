"""The sentence-embedding component in a real Rasa training: a model trained on French requests understands the
same requests said in English — which word counts alone cannot do, so the embedding is really used."""

from __future__ import annotations

from pathlib import Path

import pytest

from nlu.evaluation import Timings, train_and_predict
from nlu.training_data import Example, TrainingData
from tests.conftest import RASA_VENV

FRENCH = {
    "lost_card": [
        "j'ai perdu ma carte bancaire",
        "on m'a volé ma carte",
        "ma carte a disparu",
        "je ne retrouve plus ma carte de paiement",
        "je dois faire opposition sur ma carte",
        "ma carte bleue a été volée hier",
    ],
    "opening_hours": [
        "quels sont vos horaires d'ouverture",
        "à quelle heure ouvrez-vous",
        "vous êtes ouverts le samedi",
        "jusqu'à quelle heure êtes-vous joignables",
        "quand est-ce que l'agence ferme",
        "vos heures d'ouverture s'il vous plaît",
    ],
    "change_address": [
        "je viens de déménager",
        "je voudrais changer mon adresse postale",
        "ma nouvelle adresse est à Lyon",
        "mettre à jour mon adresse",
        "j'ai changé de domicile",
        "modifier l'adresse de mon contrat",
    ],
}
ENGLISH = [
    ("someone stole my credit card", "lost_card"),
    ("I lost my bank card", "lost_card"),
    ("what time do you open", "opening_hours"),
    ("are you open on saturdays", "opening_hours"),
    ("I moved to a new house", "change_address"),
    ("please update my postal address", "change_address"),
]


def _config(tmp_path: Path, with_embeddings: bool) -> Path:
    use = "  - name: callbot_rasa.use_featurizer.UseFeaturizer\n    scale: 10.0\n" if with_embeddings else ""
    config = tmp_path / f"config-{with_embeddings}.yml"
    config.write_text(
        "recipe: default.v1\nlanguage: fr\npipeline:\n  - name: WhitespaceTokenizer\n"
        "  - name: CountVectorsFeaturizer\n"
        f"{use}  - name: LogisticRegressionClassifier\n    random_state: 42\n",
        encoding="utf-8",
    )
    return config


@pytest.mark.timeout(600)
def test_a_model_trained_in_french_understands_english_with_the_embeddings(tmp_path: Path) -> None:
    if not (RASA_VENV / "bin" / "rasa").is_file():
        pytest.skip("the Rasa virtualenv is not installed (make setup)")
    train = TrainingData(tuple(Example(t, intent, t) for intent, texts in FRENCH.items() for t in texts))
    test = tuple(Example(text, intent, text) for text, intent in ENGLISH)
    timings = Timings()
    with_use = train_and_predict(train, test, _config(tmp_path, True), RASA_VENV, timings)
    assert sum(p.intent == p.label for p in with_use) >= 5, [(p.text, p.intent) for p in with_use]
    without = train_and_predict(train, test, _config(tmp_path, False), RASA_VENV, timings)
    assert sum(p.intent == p.label for p in without) <= 3, "word counts alone can only guess"
