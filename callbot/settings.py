"""Service settings. The only module that reads the environment; built in the app factory, never at import."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Every setting can be given as an environment variable ``CALLBOT_<NAME>``."""

    model_config = SettingsConfigDict(env_prefix="CALLBOT_", extra="ignore")

    host: str = "127.0.0.1"
    port: int = 8080
    log_level: str = "INFO"
    log_format: Literal["text", "json"] = Field(
        default="text", description="json: one JSON object a line, with the call_id as a field"
    )

    bot_dir: Path = Path("bots/fr")
    data_dir: Path = Path("data")
    models_dir: Path = Path("models")
    database_url: str | None = Field(default=None, description="SQLAlchemy URL; default is a SQLite file in data_dir")

    public_base_url: str | None = Field(
        default=None,
        description="Public URL the provider reaches us at (https://callbot.example.com); used for TwiML "
        "URLs and signature checks behind a reverse proxy",
    )
    twilio_auth_token: SecretStr | None = Field(
        default=None, description="When set, every Twilio webhook must carry a valid X-Twilio-Signature"
    )

    # --- Asterisk (docs/asterisk.md) ---
    audiosocket_listen: str | None = Field(
        default=None, description="host:port where Asterisk's AudioSocket connections are accepted (off when unset)"
    )
    audiosocket_known_calls_only: bool = Field(
        default=False,
        description="accept only AudioSocket UUIDs of calls set up through ARI (the dialplan's own UUIDs are refused)",
    )
    asterisk_media_username: str | None = Field(
        default=None, description="chan_websocket dialling us: the websocket_client.conf username to require"
    )
    asterisk_media_password: SecretStr | None = Field(
        default=None, description="chan_websocket dialling us: the websocket_client.conf password to require"
    )
    ari_url: str | None = Field(
        default=None, description="Asterisk's HTTP server for ARI (http://pbx:8088); ARI call control is off when unset"
    )
    ari_username: str = "callbot"
    ari_password: SecretStr | None = None
    ari_app: str = Field(default="callbot", description="the Stasis application the dialplan sends calls to")
    ari_media: Literal["audiosocket", "websocket"] = Field(
        default="audiosocket", description="how ARI attaches the caller's audio: AudioSocket or chan_websocket"
    )
    ari_media_format: Literal["slin", "slin16", "ulaw", "alaw"] = Field(
        default="slin", description="the external media's codec (ulaw and alaw need ari_media=websocket)"
    )
    ari_audiosocket_address: str | None = Field(
        default=None,
        description="host:port Asterisk connects to for AudioSocket media (default: audiosocket_listen)",
    )
    ari_transfer_context: str = Field(
        default="callbot-transfer", description="dialplan context carrying out queue, endpoint, number and SIP targets"
    )
    ari_media_timeout_s: float = Field(
        default=5.0, gt=0, description="a call whose media has not connected by then is handed to the failover queue"
    )

    # --- limits at the edge (docs/access.md) ---
    max_body_bytes: int = Field(
        default=1024 * 1024, ge=1024, description="largest request body (telephony webhooks: at most 64 KiB)"
    )
    max_config_body_bytes: int = Field(
        default=8 * 1024 * 1024, ge=1024, description="largest body of a bot folder file saved from the console"
    )
    webhook_rate_per_s: float = Field(
        default=20.0, ge=0, description="telephony webhook requests per second per source address (0: no limit)"
    )
    webhook_burst: int = Field(default=60, ge=1, description="telephony webhook requests a source may send at once")

    max_calls: int = Field(
        default=0,
        ge=0,
        description="calls this instance carries at most (0: no limit); beyond, a new call goes straight to the "
        "failover queue (or the mailbox) and /readyz answers 503",
    )

    instance_id: str | None = Field(
        default=None,
        description="this instance's name among those sharing the database (default: host name and port); keep "
        "it stable across restarts so that a restarted instance closes the calls it carried when it stopped",
    )
    drain_timeout_s: float = Field(
        default=90.0,
        ge=0,
        description="on SIGTERM, calls in progress may finish for this long (no new call is taken meanwhile)",
    )

    # --- calls that will never end on their own (docs/call-path.md) ---
    stale_ringing_s: float = Field(
        default=300.0, gt=0, description="a call whose webhook came but no media stream did is closed as expired"
    )
    call_heartbeat_s: float = Field(
        default=60.0,
        gt=0,
        description="each instance says this often which calls it carries; a call unreported for three "
        "heartbeats (its instance crashed) is closed as interrupted",
    )

    rasa_url: str | None = Field(default=None, description="External Rasa server; when unset a sidecar is started")
    rasa_token: SecretStr | None = Field(default=None, description="auth token of the external Rasa server")
    model_server_token: SecretStr | None = Field(
        default=None,
        description="token external Rasa servers give (?token=) to pull the published model from "
        "/api/nlu/model/published; the route is off when unset",
    )
    rasa_venv: Path = Path(".venv-rasa")
    rasa_port: int = 5005
    rasa_timeout_s: float = 2.0
    rasa_start_timeout_s: float = 180.0

    vosk_model: Path | None = Field(default=None, description="Vosk model folder (overrides models_dir lookup)")
    piper_voice: Path | None = Field(default=None, description="piper .onnx voice (overrides models_dir lookup)")
    whisper_model: str | None = Field(
        default=None,
        description="Whisper model: a faster-whisper folder, or the name of one installed under models_dir/whisper "
        "(default: the largest installed)",
    )
    whisper_device: Literal["auto", "cpu", "cuda"] = Field(
        default="auto", description="where Whisper runs: auto is CUDA when CTranslate2 sees a GPU, else the CPU"
    )
    whisper_compute_type: str = Field(default="int8", description="CTranslate2 compute type of the Whisper model")
    whisper_threads: int = Field(default=2, ge=1, description="CPU threads of one Whisper decoding")
    live_asr: Literal["auto", "vosk", "whisper", "none"] = Field(
        default="auto",
        description="engine that hears live turns: auto is Vosk when the bot's language has a Vosk model, else "
        "Whisper behind a voice-activity detector when one is installed (answers later: suits a GPU), else none "
        "(the keypad menu)",
    )
    live_end_silence_s: float = Field(
        default=0.7, ge=0.2, le=3.0, description="Whisper live mode: the silence that ends a caller's utterance"
    )
    tts_fallback_voice: Path | None = Field(
        default=None, description="piper voice used when the bot's language has none installed"
    )

    tts_cache_dir: Path | None = Field(
        default=None, description="synthesized fixed prompts kept across restarts (default data_dir/cache/tts)"
    )

    # --- the overflow mailbox (docs/mailbox.md) ---
    recordings: Path | None = Field(
        default=None,
        validation_alias="CALLBOT_RECORDINGS_DIR",
        description="where messages' recordings are written (default data_dir/recordings); several instances "
        "put it on shared storage so that any of them transcribes, plays and recovers any message",
    )
    audio_retention_days: int = Field(default=90, ge=1, description="messages' audio is deleted after this")
    transcript_retention_days: int = Field(
        default=365, ge=1, description="transcripts (messages and call turns) are deleted after this"
    )
    mailbox_keep_unmasked: bool = Field(
        default=False, description="also keep transcripts before card and account numbers are masked"
    )
    mailbox_asr: Literal["auto", "vosk", "whisper"] = Field(
        default="auto",
        description="engine that transcribes messages: auto is Vosk when the bot's language has a Vosk model, "
        "else Whisper when one is installed",
    )
    mailbox_retry_s: float = Field(default=30.0, gt=0, description="first retry delay of transcription and e-mail")

    smtp_host: str | None = Field(default=None, description="SMTP server for new-message e-mails (off when unset)")
    smtp_port: int = 587
    smtp_starttls: bool = True
    smtp_tls: bool = Field(default=False, description="implicit TLS (port 465) instead of STARTTLS")
    smtp_user: str | None = None
    smtp_password: SecretStr | None = None
    smtp_ca_file: Path | None = Field(default=None, description="CA bundle to trust for the SMTP server")
    smtp_from: str = "callbot@localhost"
    notify_to: str = Field(default="", description="comma-separated recipients of new-message e-mails")
    notify_attach_audio: bool = Field(default=False, description="attach the recording (otherwise link to it)")

    @property
    def instance(self) -> str:
        return self.instance_id or f"{socket.gethostname()}:{self.port}"

    @property
    def recordings_dir(self) -> Path:
        return self.recordings or self.data_dir / "recordings"

    @property
    def effective_tts_cache_dir(self) -> Path:
        return self.tts_cache_dir or self.data_dir / "cache" / "tts"

    @field_validator("public_base_url")
    @classmethod
    def _strip_slash(cls, value: str | None) -> str | None:
        return value.rstrip("/") if value else value

    @property
    def effective_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'callbot.db').resolve()}"
