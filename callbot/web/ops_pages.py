"""Operations' console: intents and their examples, the bot folder's files, version history, agents and queues,
reason corrections to review, and train-and-publish. Every change is validated like at startup, saved atomically
with its version, and applied to the running service."""

from __future__ import annotations

import asyncio
import contextlib
import time
from datetime import UTC, datetime
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Form, HTTPException, Request
from fastapi.responses import Response

from callbot.errors import CallbotError, ConfigError, StorageError
from callbot.folder_edits import EDITABLE, FolderEditor, diff
from callbot.resources import Resources
from callbot.training_job import Trainer
from callbot.web.render import OpsPage, page, redirect
from nlu import training_edits
from nlu.publishing import serving_model
from nlu.training_data import load_training_data
from routing.queue_state import queue_status
from routing.routing_config import AGENT_STATUSES

router = APIRouter(prefix="/ops", include_in_schema=False)


def _editor(request: Request) -> FolderEditor:
    editor: FolderEditor = request.app.state.editor
    return editor


def _resources(request: Request) -> Resources:
    resources: Resources = request.app.state.resources
    return resources


async def _save(request: Request, file: str, text: str, author: str, summary: str) -> None:
    """Save through the editor (validated, atomic, versioned) and use the new folder at once."""
    saved = await asyncio.to_thread(_editor(request).save, file, text, author, summary)
    _resources(request).apply_folder(saved.folder)


# --- intents and examples -------------------------------------------------------------------------------------


@router.get("/intents")
async def intents(request: Request, principal: OpsPage, error: str = "") -> Response:
    resources = _resources(request)
    data = load_training_data(resources.settings.bot_dir / "nlu.yml")
    counts: dict[str, int] = {}
    for example in data.examples:
        counts[example.intent] = counts.get(example.intent, 0) + 1
    actions = {name: action.action for name, action in resources.bot.intents.items()}
    return page(request, "ops_intents.html", principal, counts=sorted(counts.items()), actions=actions, error=error)


@router.post("/intents")
async def new_intent(
    request: Request,
    principal: OpsPage,
    name: Annotated[str, Form(max_length=64)],
    examples: Annotated[str, Form(max_length=20000)],
) -> Response:
    editor = _editor(request)
    try:
        text = training_edits.add_intent(editor.read("nlu.yml"), name.strip(), examples.splitlines())
        await _save(request, "nlu.yml", text, principal.user.username, f"new intent {name.strip()}")
    except ConfigError as exc:
        return redirect("/ops/intents?" + urlencode({"error": str(exc)}))
    return redirect(f"/ops/intents/{name.strip()}?saved=1")


@router.get("/intents/{intent}")
async def intent_examples(
    request: Request, principal: OpsPage, intent: str, error: str = "", saved: str = ""
) -> Response:
    resources = _resources(request)
    data = load_training_data(resources.settings.bot_dir / "nlu.yml")
    examples = [e.annotated for e in data.examples if e.intent == intent]
    if not examples:
        raise HTTPException(status_code=404, detail="no such intent")
    return page(
        request,
        "ops_intent.html",
        principal,
        intent=intent,
        examples=examples,
        others=[i for i in data.intents if i != intent],
        action=resources.bot.intents.get(intent),
        error=error,
        saved=bool(saved),
    )


@router.post("/intents/{intent}")
async def change_example(
    request: Request,
    principal: OpsPage,
    intent: str,
    action: Annotated[str, Form()],
    example: Annotated[str, Form(max_length=500)] = "",
    new: Annotated[str, Form(max_length=500)] = "",
    to: Annotated[str, Form(max_length=64)] = "",
) -> Response:
    editor = _editor(request)
    document = editor.read("nlu.yml")
    try:
        if action == "add":
            text, summary = training_edits.add_example(document, intent, new), f"{intent}: + {new}"
        elif action == "edit":
            text, summary = training_edits.replace_example(document, intent, example, new), f"{intent}: ~ {new}"
        elif action == "delete":
            text, summary = training_edits.remove_example(document, intent, example), f"{intent}: - {example}"
        elif action == "move":
            text, summary = training_edits.move_example(document, intent, example, to), f"{intent} -> {to}: {example}"
        else:
            raise ConfigError(f"unknown action {action!r}")
        await _save(request, "nlu.yml", text, principal.user.username, summary)
    except ConfigError as exc:
        return redirect(f"/ops/intents/{intent}?" + urlencode({"error": str(exc)}))
    return redirect(f"/ops/intents/{intent}?saved=1")


# --- the bot folder's files -----------------------------------------------------------------------------------


@router.get("/config")
async def config(request: Request, principal: OpsPage, file: str = "routing.yml", saved: str = "") -> Response:
    if file not in EDITABLE:
        raise HTTPException(status_code=404, detail="no such file")
    text = _editor(request).read(file)
    return page(
        request, "ops_config.html", principal, file=file, files=EDITABLE, text=text, error=None, saved=bool(saved)
    )


@router.post("/config")
async def save_config(
    request: Request,
    principal: OpsPage,
    file: Annotated[str, Form()],
    text: Annotated[str, Form(max_length=2_000_000)],
    summary: Annotated[str, Form(max_length=256)] = "",
) -> Response:
    text = text.replace("\r\n", "\n")
    try:
        await _save(request, file, text, principal.user.username, summary or f"{file} edited")
    except ConfigError as exc:
        # the edit stays in the form, with the validator's message: nothing was written
        return page(
            request,
            "ops_config.html",
            principal,
            422,
            file=file,
            files=EDITABLE,
            text=text,
            error=str(exc),
            saved=False,
        )
    return redirect(f"/ops/config?{urlencode({'file': file, 'saved': '1'})}")


@router.get("/versions")
async def versions(request: Request, principal: OpsPage) -> Response:
    rows = await asyncio.to_thread(_editor(request).versions)
    return page(request, "ops_versions.html", principal, versions=rows, shown=None, diff_text="")


@router.get("/versions/{version_id}")
async def version(request: Request, principal: OpsPage, version_id: int) -> Response:
    editor = _editor(request)
    shown = await asyncio.to_thread(editor.version, version_id)
    if shown is None or shown.bot != editor.bot:
        raise HTTPException(status_code=404, detail="no such version")
    rows = await asyncio.to_thread(editor.versions)
    return page(request, "ops_versions.html", principal, versions=rows, shown=shown, diff_text=diff(shown))


@router.post("/versions/{version_id}/revert")
async def revert(request: Request, principal: OpsPage, version_id: int) -> Response:
    try:
        saved = await asyncio.to_thread(_editor(request).revert, version_id, principal.user.username)
    except ConfigError as exc:
        raise HTTPException(status_code=409, detail=str(exc)) from exc
    _resources(request).apply_folder(saved.folder)
    return redirect(f"/ops/versions/{saved.version_id}")


# --- agents and queues ----------------------------------------------------------------------------------------


@router.get("/agents")
async def agents(request: Request, principal: OpsPage) -> Response:
    resources = _resources(request)
    router_ = resources.folder.router
    local = router_.local(datetime.now(UTC))
    live = resources.live.snapshot()
    queues = [queue_status(router_.config, router_.agents, name, local, live) for name in router_.config.queues]
    rows = [
        {"id": agent_id, "name": agent.name, "skills": agent.skills, "status": resources.live.status(agent_id)}
        for agent_id, agent in resources.folder.routing.agents.items()
    ]
    return page(request, "ops_agents.html", principal, agents=rows, queues=queues, statuses=AGENT_STATUSES)


@router.post("/agents/{agent_id}/status")
async def agent_status(request: Request, principal: OpsPage, agent_id: str, status: Annotated[str, Form()]) -> Response:
    resources = _resources(request)
    if agent_id not in resources.folder.routing.agents or status not in AGENT_STATUSES:
        raise HTTPException(status_code=422, detail="unknown agent or status")
    resources.live.set_status(agent_id, status)
    # routing uses the status at once; with the database down it is not kept across a restart (/healthz says so)
    with contextlib.suppress(StorageError):
        await resources.store.set_agent_status(agent_id, status, by=principal.user.username)
    return redirect("/ops/agents")


# --- corrections ---------------------------------------------------------------------------------------------


@router.get("/corrections")
async def corrections(request: Request, principal: OpsPage, error: str = "") -> Response:
    rows = await asyncio.to_thread(_editor(request).corrections)
    return page(request, "ops_corrections.html", principal, corrections=rows, error=error)


@router.post("/corrections/{correction_id}")
async def review(
    request: Request,
    principal: OpsPage,
    correction_id: int,
    decision: Annotated[str, Form()],
    text: Annotated[str, Form(max_length=500)] = "",
) -> Response:
    try:
        saved = await asyncio.to_thread(
            _editor(request).review, correction_id, decision == "accept", principal.user.username, text
        )
    except ConfigError as exc:
        return redirect("/ops/corrections?" + urlencode({"error": str(exc)}))
    if saved is not None:
        _resources(request).apply_folder(saved.folder)
    return redirect("/ops/corrections")


# --- train and publish ---------------------------------------------------------------------------------------


def _trainer(request: Request) -> Trainer:
    trainer: Trainer | None = getattr(request.app.state, "trainer", None)
    if trainer is None:
        trainer = request.app.state.trainer = Trainer(_resources(request))
    return trainer


@router.get("/training")
async def training(request: Request, principal: OpsPage) -> Response:
    return page(request, "ops_training.html", principal, **_training_context(request))


@router.get("/training/status")
async def training_status(request: Request, principal: OpsPage) -> Response:
    return page(request, "ops_training_status.html", principal, **_training_context(request))


@router.post("/training/train")
async def start_training(request: Request, principal: OpsPage) -> Response:
    _trainer(request).start(principal.user.username)
    return redirect("/ops/training")


@router.post("/training/publish")
async def publish_model(request: Request, principal: OpsPage) -> Response:
    try:
        _trainer(request).publish(principal.user.username)
    except CallbotError as exc:
        raise HTTPException(status_code=409, detail=str(exc)) from exc
    return redirect("/ops/training")


def _training_context(request: Request) -> dict[str, Any]:
    resources = _resources(request)
    trainer = _trainer(request)
    sidecar = resources.sidecar
    serving = sidecar.model_path.name if sidecar is not None else "external Rasa"
    published = serving_model(resources.settings.bot_dir, resources.settings.models_dir).name.removesuffix(".tar.gz")
    now = time.time()
    rasa_servers = [
        {"address": a, "serving": p.serving, "current": p.serving == published, "ago_s": round(now - p.at)}
        for a, p in sorted(resources.model_polls.items())
    ]
    return {
        "job": trainer.status,
        "busy": trainer.busy,
        "serving": serving,
        "nlu": resources.health.get("nlu"),
        "rasa_servers": rasa_servers,
    }
