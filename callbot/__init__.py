"""callbot: a self-hosted callbot and overflow voicebot for customer-service phone lines."""

__version__ = "0.1.0"
