"""The TwiML documents we answer Twilio with."""

from __future__ import annotations

from xml.sax.saxutils import escape, quoteattr

from routing.routing_config import TransferTarget

_LANG = {"fr": "fr-FR", "en": "en-US"}


def _doc(body: str) -> str:
    return f'<?xml version="1.0" encoding="UTF-8"?><Response>{body}</Response>'


def connect_stream(
    stream_url: str,
    action_url: str,
    parameters: dict[str, str],
    announcement: str | None = None,
    language: str = "fr",
) -> str:
    """Open a bidirectional media stream; Twilio requests ``action_url`` when the stream ends. ``parameters``
    come back in the stream's ``start`` message (``customParameters``). ``announcement`` is said by the provider
    before the stream opens."""
    params = "".join(f"<Parameter name={quoteattr(k)} value={quoteattr(v)}/>" for k, v in parameters.items())
    say = say_text(announcement, language) if announcement else ""
    return _doc(
        f"{say}<Connect action={quoteattr(action_url)}><Stream url={quoteattr(stream_url)}>{params}</Stream></Connect>"
    )


def transfer(
    target: TransferTarget,
    announcement: str | None = None,
    language: str = "fr",
    *,
    action_url: str | None = None,
    whisper_url: str | None = None,
) -> str:
    """Hand the caller over: ``<Dial>`` a number or SIP URI, or ``<Enqueue>`` into a Twilio queue.

    A caller joins a Twilio queue with ``<Enqueue>``; ``<Dial><Queue>`` is what an agent's leg uses to take
    the caller out of it. ``action_url`` receives the result (``DialCallStatus`` or ``QueueResult``);
    ``whisper_url`` is played to the agent who answers, before the caller is connected.
    """
    say = say_text(announcement, language) if announcement else ""
    action = f" action={quoteattr(action_url)}" if action_url else ""
    if target.type == "queue":
        return _doc(f"{say}<Enqueue{action}>{escape(target.value)}</Enqueue>")
    if target.type == "webhook":
        raise ValueError("a webhook target is resolved to a number, SIP URI or queue before the TwiML")
    caller_id = f" callerId={quoteattr(target.caller_id)}" if target.caller_id else ""
    noun = "Number" if target.type == "number" else "Sip"
    url = f" url={quoteattr(whisper_url)}" if whisper_url else ""
    return _doc(f"{say}<Dial{caller_id}{action}><{noun}{url}>{escape(target.value)}</{noun}></Dial>")


def say(text: str, language: str = "fr") -> str:
    """A document that only speaks ``text`` (a whisper to an agent, an apology before hanging up)."""
    return _doc(say_text(text, language))


def say_text(text: str, language: str) -> str:
    return f"<Say language={quoteattr(_LANG.get(language, language))}>{escape(text)}</Say>"


def redirect(url: str) -> str:
    """Ask Twilio to fetch the call's TwiML again from ``url`` (POST, with the same call parameters)."""
    return _doc(f'<Redirect method="POST">{escape(url)}</Redirect>')


def hangup() -> str:
    return _doc("<Hangup/>")
