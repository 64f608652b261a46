"""Where a transfer decision sends an Asterisk channel: a dialplan place, and the channel variables the dialplan
reads to carry it out (``docs/asterisk.md`` has the ``callbot-transfer`` context that uses them)."""

from __future__ import annotations

from callbot.call.outcome import CallOutcome
from routing.routing_config import RoutingConfig, TransferTarget


def dialplan_place(target: TransferTarget, transfer_context: str) -> tuple[str, str, str]:
    """(context, extension, priority or label) for ARI's ``continue``. A ``dialplan`` target names its place;
    the others go to the transfer context, at the extension named after their type (``queue``, ``endpoint``,
    ``number``, ``sip``), which dials ``${CALLBOT_TARGET}``."""
    if target.type == "dialplan":
        context, extension, *rest = target.value.split(",")
        return context, extension, rest[0] if rest else "1"
    return transfer_context, target.type, "1"


def transfer_variables(
    call_id: str, outcome: CallOutcome, routing: RoutingConfig, intent: str = "", caller: str = ""
) -> dict[str, str]:
    """The decision, as channel variables set on the caller's channel before it continues in the dialplan."""
    target = outcome.target
    assert target is not None
    queue = routing.queues.get(outcome.queue or "")
    variables = {
        "CALLBOT_CALL_ID": call_id,
        "CALLBOT_ACTION": outcome.outcome,
        "CALLBOT_QUEUE": outcome.queue or "",
        "CALLBOT_SKILL": outcome.skill or "",
        "CALLBOT_REASON": outcome.reason or "",
        "CALLBOT_INTENT": intent,
        "CALLBOT_TARGET_TYPE": target.type,
        "CALLBOT_TARGET": target.value,
        "CALLBOT_CALLER_ID": target.caller_id or "",
    }
    if queue is not None and queue.whisper:
        variables["CALLBOT_WHISPER"] = queue.whisper_for(intent, caller, outcome.skill or "")
    return variables
