"""The TwiML documents we answer Twilio with."""

from __future__ import annotations

from xml.sax.saxutils import escape, quoteattr

from routing.bot_config import TransferTarget

_LANG = {"fr": "fr-FR", "en": "en-US"}


def _doc(body: str) -> str:
    return f'<?xml version="1.0" encoding="UTF-8"?><Response>{body}</Response>'


def connect_stream(stream_url: str, action_url: str, call_id: str) -> str:
    """Open a bidirectional media stream; Twilio requests ``action_url`` when the stream ends."""
    return _doc(
        f"<Connect action={quoteattr(action_url)}><Stream url={quoteattr(stream_url)}>"
        f'<Parameter name="callId" value={quoteattr(call_id)}/></Stream></Connect>'
    )


def transfer(target: TransferTarget, announcement: str | None = None, language: str = "fr") -> str:
    """Hand the caller over: ``<Dial>`` a number or SIP URI, or ``<Enqueue>`` into a Twilio queue.

    A caller joins a Twilio queue with ``<Enqueue>``; ``<Dial><Queue>`` is what an agent's leg uses to take
    the caller out of it.
    """
    say = (
        f"<Say language={quoteattr(_LANG.get(language, language))}>{escape(announcement)}</Say>" if announcement else ""
    )
    if target.type == "queue":
        return _doc(f"{say}<Enqueue>{escape(target.value)}</Enqueue>")
    caller_id = f" callerId={quoteattr(target.caller_id)}" if target.caller_id else ""
    noun = "Number" if target.type == "number" else "Sip"
    return _doc(f"{say}<Dial{caller_id}><{noun}>{escape(target.value)}</{noun}></Dial>")


def hangup() -> str:
    return _doc("<Hangup/>")
