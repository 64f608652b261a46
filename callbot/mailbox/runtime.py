"""Starting the mailbox with the service: recovery of unfinished messages, then the worker."""

from __future__ import annotations

import asyncio
import logging

from callbot.mailbox.classify import classify_message
from callbot.mailbox.service import executor_runner, recover_messages, smtp_settings, worker_settings
from callbot.mailbox.store import Classified
from callbot.mailbox.worker import Classify, MailboxWorker
from callbot.resources import Resources

log = logging.getLogger(__name__)


def classifier(resources: Resources) -> Classify:
    async def classify(text: str, language: str) -> Classified:
        return await classify_message(resources.nlu, text, language, resources.folder.timezone)

    return classify


async def start_mailbox(resources: Resources) -> None:
    """File what an interruption left unfinished, then run the worker for as long as the service runs."""
    settings = resources.settings
    recovered = await asyncio.to_thread(recover_messages, resources.mailbox, settings.recordings_dir)
    if recovered:
        log.warning("%d interrupted message(s) recovered into the mailbox", len(recovered))
    if resources.mailbox_asr is None:
        log.warning(
            "no speech model: messages wait in pending_transcription; install one, or run "
            "`callbot mailbox transcribe --pending` later"
        )
    worker = MailboxWorker(
        resources.mailbox,
        worker_settings(settings, resources.folder.timezone),
        resources.mailbox_asr,
        classifier(resources),
        executor_runner(resources.asr_pool),
        smtp_settings(settings),
    )
    resources.mailbox_worker = worker
    await worker.run()
