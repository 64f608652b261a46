"""The FastAPI application factory."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from callbot import __version__
from callbot.access.bootstrap import ensure_first_admin
from callbot.access.limits import BodyLimits, EdgeLimits, TokenBuckets
from callbot.access.throttle import LoginThrottle
from callbot.access.users import UserStore
from callbot.api import router as api_router
from callbot.call.housekeeping import close_previous_run, tidy_calls
from callbot.folder_edits import FolderEditor
from callbot.mailbox.runtime import start_mailbox
from callbot.mailbox_api import router as mailbox_router
from callbot.model_server import router as model_server_router
from callbot.queues_api import router as queues_router
from callbot.resources import load_resources, start_nlu, warm_answers, warm_prompts
from callbot.settings import Settings
from callbot.shared_state import follow_shared_state, restore_agent_statuses
from callbot.web import install_console
from telephony.asterisk import check_asterisk_settings, start_asterisk
from telephony.chan_websocket_media import router as asterisk_media_router
from telephony.twilio_media import router as media_router
from telephony.twilio_transfer import router as transfer_router
from telephony.twilio_webhook import router as webhook_router

log = logging.getLogger(__name__)


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the app. Configuration is validated here: a wrong bot folder raises ConfigError before serving."""
    settings = settings or Settings()
    check_asterisk_settings(settings)
    resources = load_resources(settings)
    users = UserStore(resources.store.engine)
    ensure_first_admin(users, settings.data_dir)
    warm_prompts(resources)
    editor = FolderEditor(resources.store.engine, settings.bot_dir)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await close_previous_run(resources)
        await restore_agent_statuses(resources)
        # Rasa takes a while to load; calls are answered meanwhile and handed to the failover skill
        resources.background.append(asyncio.create_task(start_nlu(resources), name="start-nlu"))
        resources.background.append(asyncio.create_task(warm_answers(resources), name="warm-answers"))
        resources.background.append(asyncio.create_task(start_mailbox(resources), name="mailbox"))
        resources.background.append(asyncio.create_task(follow_shared_state(resources, editor), name="shared-state"))
        resources.background.append(asyncio.create_task(tidy_calls(resources), name="tidy-calls"))
        stop_asterisk = await start_asterisk(resources)
        try:
            yield
        finally:
            await stop_asterisk()
            await resources.close()

    app = FastAPI(
        title="callbot",
        version=__version__,
        lifespan=lifespan,
        description="Self-hosted callbot and overflow voicebot for customer-service phone lines",
    )
    app.add_middleware(
        EdgeLimits,
        bodies=BodyLimits(settings.max_body_bytes, settings.max_config_body_bytes),
        webhooks=TokenBuckets(settings.webhook_rate_per_s, settings.webhook_burst)
        if settings.webhook_rate_per_s
        else None,
    )
    app.state.resources = resources
    app.state.users = users
    app.state.login_throttle = LoginThrottle()
    app.state.editor = editor
    app.include_router(webhook_router)
    app.include_router(media_router)
    app.include_router(asterisk_media_router)
    app.include_router(transfer_router)
    app.include_router(api_router)
    app.include_router(queues_router)
    app.include_router(mailbox_router)
    app.include_router(model_server_router)
    install_console(app)
    return app
