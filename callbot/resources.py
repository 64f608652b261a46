"""Heavy things loaded once at startup (speech engines, database, NLU), and each component's health."""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import httpx

from callbot.engine_threads import engine_pool
from callbot.errors import CallbotError, ModelMissingError
from callbot.mailbox.service import smtp_settings
from callbot.mailbox.store import MailboxStore
from callbot.mailbox.worker import MailboxWorker
from callbot.metrics import Metrics
from callbot.model_store import find_piper_voice
from callbot.settings import Settings
from callbot.speech.live import LiveEngine, load_live_asr
from callbot.speech.piper_tts import PiperSpeaker
from callbot.speech.transcription import Transcriber, mailbox_transcriber
from callbot.storage.call_store import CallOutcome, CallStore
from callbot.storage.database import make_engine, migrate
from callbot.storage.waiting_store import WaitingStore
from nlu.client import RasaClient
from nlu.publishing import serving_model
from nlu.sidecar import RasaSidecar
from routing.actions import HangupAction
from routing.bot_config import BotConfig
from routing.bot_folder import BotFolder, load_bot_folder
from routing.live import LiveState

if TYPE_CHECKING:
    from callbot.call.session import CallSession
    from callbot.model_server import Poll

log = logging.getLogger(__name__)


@dataclass
class Component:
    state: str  # "up", "degraded", "starting", "unavailable"
    detail: str = ""


class LineAudioCache:
    """Fixed prompts in each line format they were played in (``ulaw/8000``, ``slin/16000``...), so that a prompt
    is resampled and encoded once, not on every call. Bounded, least recently used first out."""

    def __init__(self, limit: int = 512) -> None:
        self._items: OrderedDict[tuple[str, str], tuple[bytes, ...]] = OrderedDict()
        self._limit = limit

    def get(self, key: tuple[str, str]) -> tuple[bytes, ...] | None:
        audio = self._items.get(key)
        if audio is not None:
            self._items.move_to_end(key)
        return audio

    def __setitem__(self, key: tuple[str, str], audio: tuple[bytes, ...]) -> None:
        self._items[key] = audio
        while len(self._items) > self._limit:
            self._items.popitem(last=False)


class RecentOutcomes:
    """Decisions of recent calls, kept in memory so that the <Connect action> callback works even when the
    database is down. Bounded: a caller who hangs up never triggers the callback that would collect theirs."""

    def __init__(self, limit: int = 10_000) -> None:
        self._items: OrderedDict[str, CallOutcome] = OrderedDict()
        self._limit = limit

    def __setitem__(self, call_id: str, outcome: CallOutcome) -> None:
        self._items[call_id] = outcome
        self._items.move_to_end(call_id)
        while len(self._items) > self._limit:
            self._items.popitem(last=False)

    def __contains__(self, call_id: object) -> bool:
        return call_id in self._items

    def __len__(self) -> int:
        return len(self._items)

    def pop(self, call_id: str) -> CallOutcome | None:
        return self._items.pop(call_id, None)


@dataclass
class Resources:
    settings: Settings
    folder: BotFolder
    live: LiveState
    store: CallStore
    waiting: WaitingStore
    """The calls waiting in the queues, as every instance on the database sees them."""
    metrics: Metrics
    nlu: RasaClient
    mailbox: MailboxStore
    asr_pool: ThreadPoolExecutor
    """Vosk decoding gets its own threads, so that greetings, NLU and the database never queue behind it."""
    tts_pool: ThreadPoolExecutor
    asr: LiveEngine | None = None
    """The engine that hears live turns (Vosk, or Whisper with voice activity: ``CALLBOT_LIVE_ASR``)."""
    mailbox_asr: Transcriber | None = None
    """The engine that transcribes messages (Vosk's model above, or Whisper: ``CALLBOT_MAILBOX_ASR``)."""
    tts: PiperSpeaker | None = None
    sidecar: RasaSidecar | None = None
    health: dict[str, Component] = field(default_factory=dict)
    outcomes: RecentOutcomes = field(default_factory=RecentOutcomes)
    line_audio: LineAudioCache = field(default_factory=LineAudioCache)
    active_calls: dict[str, CallSession] = field(default_factory=dict)
    """Calls whose media stream is open, by call id."""
    expected_streams: dict[str, dict[str, str]] = field(default_factory=dict)
    """Calls set up through ARI whose media has yet to connect: what is known of them (caller, called, mode)."""
    background: list[asyncio.Task[None]] = field(default_factory=list)
    warmed: bool = False
    http: httpx.AsyncClient = field(default_factory=lambda: httpx.AsyncClient(follow_redirects=False))
    """Outbound HTTP (transfer hand-off webhooks)."""
    mailbox_worker: MailboxWorker | None = None
    model_polls: dict[str, Poll] = field(default_factory=dict)
    """External Rasa servers pulling the published model, by address: the model each holds."""
    draining: bool = False
    """SIGTERM came: no new call is taken, the calls in progress finish (``callbot.drain``)."""
    last_answer_at: float = 0.0
    """When this instance last answered a new call's webhook (its stream may still be on its way)."""

    @property
    def bot(self) -> BotConfig:
        return self.folder.bot

    def at_capacity(self) -> bool:
        """Whether this instance carries ``max_calls`` calls already (a new one goes to a human at once)."""
        limit = self.settings.max_calls
        return bool(limit) and len(self.active_calls) >= limit

    def apply_folder(self, folder: BotFolder) -> None:
        """Use an edited bot folder from now on (calls in progress finish with the one they started with)."""
        self.live = self.live.rebase(folder.routing)
        self.folder = folder
        log.info("bot folder %s reloaded", folder.path)

    async def close(self) -> None:
        for task in self.background:
            task.cancel()
        if self.sidecar is not None:
            await self.sidecar.stop()
        await self.nlu.aclose()
        await self.http.aclose()
        self.store.engine.dispose()
        self.asr_pool.shutdown(wait=False, cancel_futures=True)
        self.tts_pool.shutdown(wait=False, cancel_futures=True)


def load_resources(settings: Settings) -> Resources:
    """Validate the bot, migrate the database and load the speech engines. Raises ConfigError when the
    configuration is wrong; a missing model only degrades the service (with a warning and a health entry)."""
    folder = load_bot_folder(settings.bot_dir)
    bot = folder.bot
    engine = make_engine(settings.effective_database_url)
    migrate(engine)
    if engine.dialect.name == "sqlite":
        log.info(
            "database: SQLite %s, for one instance only (several instances share a PostgreSQL database: "
            "CALLBOT_DATABASE_URL=postgresql://...)",
            engine.url.database,
        )
    health = {"database": Component("up", engine.url.render_as_string(hide_password=True))}
    # each engine is loaded in its own named pool: threads it starts carry the engine's name
    asr_pool, tts_pool = engine_pool("vosk", 16), engine_pool("piper", 4)
    live = asr_pool.submit(load_live_asr, settings, bot.language).result()
    health["asr"] = Component(live.state, live.detail)
    tts, health["tts"] = tts_pool.submit(_load_tts, settings, bot.language).result()
    # a Whisper live mode keeps its own copy of the model: a long message being transcribed must not hold a
    # caller's utterance behind it (one decoding at a time per copy)
    mailbox_asr = asr_pool.submit(mailbox_transcriber, settings, bot.language, live.vosk).result()
    health["mailbox_asr"] = (
        Component("up", mailbox_asr.describe())
        if mailbox_asr is not None
        else Component("unavailable", "no speech model: messages wait for `callbot mailbox transcribe --pending`")
    )
    token: str | None = None
    sidecar: RasaSidecar | None = None
    if settings.rasa_url:
        nlu_url = settings.rasa_url
        token = settings.rasa_token.get_secret_value() if settings.rasa_token else None
        health["nlu"] = Component("starting", f"external Rasa at {nlu_url}")
    else:
        model = serving_model(settings.bot_dir, settings.models_dir)
        sidecar = RasaSidecar(
            settings.rasa_venv,
            model,
            settings.rasa_port,
            settings.data_dir / "logs" / "rasa.log",
            settings.rasa_start_timeout_s,
        )
        nlu_url, token = sidecar.url, sidecar.token
        health["nlu"] = Component("starting", f"Rasa sidecar with {model.name}")
    nlu = RasaClient(nlu_url, settings.rasa_timeout_s, token=token)
    return Resources(
        settings=settings,
        folder=folder,
        live=LiveState(folder.routing),
        store=CallStore(engine),
        waiting=WaitingStore(engine, settings.bot_dir.resolve().name),
        mailbox=MailboxStore(engine, notify=smtp_settings(settings) is not None),
        metrics=Metrics(),
        nlu=nlu,
        asr=live.engine,
        mailbox_asr=mailbox_asr,
        tts=tts,
        sidecar=sidecar,
        health=health,
        asr_pool=asr_pool,
        tts_pool=tts_pool,
    )


def _load_tts(settings: Settings, language: str) -> tuple[PiperSpeaker | None, Component]:
    path = settings.piper_voice or find_piper_voice(settings.models_dir, language)
    fallback = path is None and settings.tts_fallback_voice is not None
    if path is None:
        path = settings.tts_fallback_voice
    if path is None:
        detail = (
            f"no piper voice for '{language}' in {settings.models_dir}: run `callbot models pull {language}`; "
            "calls are handed to the default queue by the provider's own announcement until then"
        )
        log.warning("speech synthesis unavailable: %s", detail)
        return None, Component("unavailable", detail)
    try:
        speaker = PiperSpeaker(Path(path), disk_cache=settings.effective_tts_cache_dir)
    except (ModelMissingError, CallbotError) as exc:
        log.warning("speech synthesis unavailable: %s", exc)
        return None, Component("unavailable", str(exc))
    if fallback:
        detail = (
            f"no '{language}' voice installed; speaking with the fallback voice {path} "
            f"(run `callbot models pull {language}`)"
        )
        log.warning("speech synthesis degraded: %s", detail)
        return speaker, Component("degraded", detail)
    return speaker, Component("up", str(path))


def warm_prompts(resources: Resources) -> None:
    """Synthesize the fixed prompts before serving (or read them from the disk cache), so that greetings,
    menus, transfer and mailbox prompts start without synthesis delay."""
    if resources.tts is None:
        return
    resources.tts_pool.submit(resources.tts.warm, fixed_prompts(resources.folder)).result()


def fixed_prompts(folder: BotFolder) -> list[str]:
    """Every text the bot may say that does not depend on the caller, as the dialogue speaks it."""
    bot, routing = folder.bot, folder.routing
    prompts = bot.prompts
    menus = [menu.prompt for menu in bot.menus.values()]
    announcements = [q.announcement for q in routing.queues.values()] + [
        s.announcement for s in routing.skills.values()
    ]
    # a rule that hangs up says its response alone: the caller's last words from the bot must not wait for piper
    hangups = [rule.then.response for rule in routing.rules if isinstance(rule.then, HangupAction)]
    last_words = [text for name in hangups if name for text in bot.responses.get(name, []) if "{" not in text]
    texts = [
        prompts.greeting,
        prompts.reprompt,
        prompts.transfer,
        prompts.goodbye,
        prompts.technical_issue,
        *prompts.overflow.model_dump().values(),
        *menus,
        *(f"{prompts.menu_invalid} {menu}" for menu in menus),
        f"{prompts.greeting} {bot.menus['main'].prompt}",
        *(text for text in announcements if text),
        *last_words,
    ]
    return list(dict.fromkeys(texts))


def fixed_answers(bot: BotConfig) -> list[str]:
    """Answers that need no entity, as the dialogue speaks them: worth synthesizing before callers ask."""
    return [
        f"{template} {bot.prompts.anything_else}"
        for templates in bot.responses.values()
        for template in templates
        if "{" not in template
    ]


async def warm_answers(resources: Resources) -> None:
    """In the background after startup: the slot-free answers, so that most turns start without synthesis delay."""
    if resources.tts is not None:
        for text in fixed_answers(resources.bot):
            await asyncio.get_running_loop().run_in_executor(resources.tts_pool, resources.tts.warm, [text])
    resources.warmed = True


async def start_nlu(resources: Resources) -> None:
    """Start (and supervise) the Rasa sidecar, or wait for the external Rasa; calls flow meanwhile."""
    health = resources.health
    if resources.sidecar is None:
        try:
            await resources.nlu.status()
            health["nlu"] = Component("up", f"external Rasa at {resources.nlu.base_url}")
        except CallbotError as exc:
            health["nlu"] = Component("unavailable", f"{exc}; calls go to the default queue")
        return
    sidecar = resources.sidecar
    if not sidecar.model_path.is_file():
        health["nlu"] = Component(
            "unavailable",
            f"no trained model {sidecar.model_path}: run `callbot nlu train`; calls go to the default queue",
        )
        log.warning("NLU unavailable: %s", health["nlu"].detail)
        return
    try:
        await sidecar.start()
        health["nlu"] = Component("up", f"Rasa sidecar on {sidecar.url} with {sidecar.model_path.name}")
    except CallbotError as exc:
        # retried by the supervisor with a growing delay, for as long as the service runs
        health["nlu"] = Component("unavailable", f"{exc}; retrying; calls go to the default queue")
        log.error("NLU unavailable, retrying: %s", exc)
    sidecar.supervise()
    await follow_training(resources)


async def follow_training(resources: Resources, every_s: float = 5.0) -> None:
    """Hot-reload the sidecar when another model was published (`callbot nlu train`, or the console)."""
    sidecar = resources.sidecar
    assert sidecar is not None
    while True:
        await asyncio.sleep(every_s)
        try:
            latest = serving_model(resources.settings.bot_dir, resources.settings.models_dir)
        except OSError as exc:
            log.warning("cannot read the bot's training data: %s", exc)
            continue
        if latest == sidecar.model_path or not latest.is_file():
            continue
        try:
            await resources.nlu.load_model(str(latest.resolve()))
        except CallbotError as exc:
            log.error("new NLU model %s not loaded, keeping %s: %s", latest.name, sidecar.model_path.name, exc)
            continue
        sidecar.model_path = latest  # a restarted sidecar starts with it too
        resources.health["nlu"] = Component("up", f"Rasa sidecar on {sidecar.url} with {latest.name}")
        log.info("NLU model %s loaded", latest.name)
