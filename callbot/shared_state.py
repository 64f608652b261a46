"""What instances sharing a database keep in step, each following the database every few seconds: agent
statuses, the calls waiting in the queues, and the bot folder's edits (a file saved from the console of one
instance is written to, and loaded by, every other). Models published are followed by the NLU itself
(``callbot.resources.follow_training``, or Rasa's own model-server pull for an external Rasa)."""

from __future__ import annotations

import asyncio
import logging
from typing import cast

from callbot.call.handover import sync_waiting
from callbot.errors import CallbotError
from callbot.folder_edits import FolderEditor
from callbot.resources import Resources
from routing.routing_config import AGENT_STATUSES, AgentStatus

log = logging.getLogger(__name__)

FOLLOW_S = 2.0
"""How often an instance reads what the others changed."""


async def restore_agent_statuses(resources: Resources) -> None:
    """Agent statuses reported before a restart (the bot folder's statuses apply to the others)."""
    try:
        _apply_statuses(resources, await resources.store.agent_statuses())
    except CallbotError as exc:
        log.warning("agent statuses not restored, the bot folder's apply: %s", exc)


class FolderFollower:
    """Loads the bot folder edits saved on any instance since this one started (or last looked)."""

    def __init__(self, editor: FolderEditor) -> None:
        self.editor = editor
        self.seen: int | None = None

    async def step(self, resources: Resources) -> bool:
        """True when a newer folder was loaded."""
        if self.seen is None:  # what the folder on disk holds at startup is what this instance serves
            self.seen = await asyncio.to_thread(self.editor.latest_version_id)
            return False
        latest, texts = await asyncio.to_thread(self.editor.changes_since, self.seen)
        if latest == self.seen:
            return False
        try:
            folder = await asyncio.to_thread(self.editor.adopt, texts)
        except CallbotError as exc:
            log.error("bot folder edit of version %d not applied here, keeping the folder in use: %s", latest, exc)
            self.seen = latest
            return False
        self.seen = latest
        resources.apply_folder(folder)
        log.info("bot folder edit %d (%s) loaded from the shared history", latest, ", ".join(sorted(texts)))
        return True


async def follow_shared_state(resources: Resources, editor: FolderEditor, every_s: float = FOLLOW_S) -> None:
    """Forever: what other instances changed reaches this one within ``every_s`` seconds (database down: what
    this instance knows is kept; /healthz says the database is down)."""
    folder = FolderFollower(editor)
    while True:
        try:
            await folder.step(resources)
            _apply_statuses(resources, await resources.store.agent_statuses())
            await sync_waiting(resources)
        except CallbotError as exc:
            log.debug("shared state not followed this time: %s", exc)
        await asyncio.sleep(every_s)


def _apply_statuses(resources: Resources, statuses: dict[str, str]) -> None:
    for agent_id, status in statuses.items():
        known = agent_id in resources.folder.routing.agents and status in AGENT_STATUSES
        if known and status != resources.live.status(agent_id):
            resources.live.set_status(agent_id, cast(AgentStatus, status))
