"""The project's own exception tree. Third-party errors are translated at each boundary (``raise ... from``)."""


class CallbotError(Exception):
    """Root of every error the project raises on purpose."""


class ConfigError(CallbotError):
    """A configuration file or setting is invalid; the message names the file, the key and the fix."""


class ModelMissingError(CallbotError):
    """A speech model is not installed; the message names the command that installs it."""


class ModelStoreError(CallbotError):
    """Downloading, verifying or importing a model failed."""


class SpeechEngineError(CallbotError):
    """Vosk or piper failed while processing audio."""


class NluError(CallbotError):
    """Rasa could not be reached or answered something unusable."""


class NluUnavailableError(NluError):
    """Rasa is down, or the circuit breaker is open: callers must be routed without NLU."""


class TrainingError(NluError):
    """Training the Rasa model failed; the message carries Rasa's own explanation."""


class ProtocolError(CallbotError):
    """A telephony peer sent something that does not follow its protocol."""


class StorageError(CallbotError):
    """The database could not record or read call data."""
