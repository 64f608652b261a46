"""E-mail notification of a new message, over SMTP (STARTTLS or TLS, with or without login)."""

from __future__ import annotations

import smtplib
import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from pathlib import Path
from zoneinfo import ZoneInfo

from callbot.errors import CallbotError
from callbot.storage.tables import MailboxItemRow

_TEXT = {
    "fr": {
        "subject": "[callbot] Nouveau message — {reason} — {caller}",
        "caller": "Appelant",
        "at": "Reçu le",
        "reason": "Motif",
        "detected": "Motif détecté",
        "duration": "Durée",
        "transcript": "Transcription",
        "pending": "(transcription en attente)",
        "failed": "(la transcription a échoué : le message est à écouter)",
        "open": "Ouvrir dans la console",
        "attached": "L'enregistrement est joint.",
        "unknown": "numéro masqué",
    },
    "en": {
        "subject": "[callbot] New message — {reason} — {caller}",
        "caller": "Caller",
        "at": "Received",
        "reason": "Reason",
        "detected": "Detected reason",
        "duration": "Duration",
        "transcript": "Transcript",
        "pending": "(transcription pending)",
        "failed": "(transcription failed: listen to the message)",
        "open": "Open in the console",
        "attached": "The recording is attached.",
        "unknown": "withheld number",
    },
}


class NotificationError(CallbotError):
    """The message could not be handed to the SMTP server."""


@dataclass(frozen=True, slots=True)
class Smtp:
    host: str
    port: int
    sender: str
    recipients: tuple[str, ...]
    starttls: bool = True
    tls: bool = False
    """Implicit TLS from the first byte (port 465) instead of STARTTLS."""
    username: str | None = None
    password: str | None = None
    ca_file: Path | None = None
    timeout_s: float = 15.0
    attach_audio: bool = False


def compose(
    item: MailboxItemRow, smtp: Smtp, timezone: str, console_url: str | None, audio: bytes | None
) -> EmailMessage:
    text = _TEXT.get(item.language, _TEXT["en"])
    caller = item.caller_number or text["unknown"]
    local = item.created_at.astimezone(ZoneInfo(timezone))
    message = EmailMessage()
    message["Subject"] = text["subject"].format(reason=item.overflow_reason, caller=caller)
    message["From"] = smtp.sender
    message["To"] = ", ".join(smtp.recipients)
    message["Date"] = formatdate(localtime=False)
    message["Message-ID"] = make_msgid(domain="callbot.local")
    if item.transcription == "transcribed":
        transcript = item.transcript or ""
    elif item.transcription == "transcription_failed":
        transcript = text["failed"]
    else:
        transcript = text["pending"]
    lines = [
        f"{text['caller']}: {caller}",
        f"{text['at']}: {local:%Y-%m-%d %H:%M %Z}",
        f"{text['reason']}: {item.overflow_reason}",
    ]
    if item.detected_reason:
        lines.append(f"{text['detected']}: {item.detected_reason} ({(item.reason_confidence or 0):.0%})")
    lines += [f"{text['duration']}: {item.duration_s:.0f} s", "", f"{text['transcript']}:", transcript, ""]
    if console_url:
        lines.append(f"{text['open']}: {console_url.rstrip('/')}/mailbox/{item.id}")
    if audio is not None:
        lines.append(text["attached"])
    message.set_content("\n".join(lines))
    if audio is not None:
        message.add_attachment(audio, maintype="audio", subtype="wav", filename=f"message-{item.id[:8]}.wav")
    return message


def send(message: EmailMessage, smtp: Smtp) -> None:
    """Blocking: run it off the event loop. Raises NotificationError with the server's words."""
    context = ssl.create_default_context(cafile=str(smtp.ca_file) if smtp.ca_file else None)
    try:
        client: smtplib.SMTP
        if smtp.tls:
            client = smtplib.SMTP_SSL(smtp.host, smtp.port, timeout=smtp.timeout_s, context=context)
        else:
            client = smtplib.SMTP(smtp.host, smtp.port, timeout=smtp.timeout_s)
        with client:
            client.ehlo()
            if smtp.starttls and not smtp.tls:
                client.starttls(context=context)
                client.ehlo()
            if smtp.username:
                client.login(smtp.username, smtp.password or "")
            client.send_message(message)
    except (smtplib.SMTPException, OSError) as exc:
        raise NotificationError(f"SMTP {smtp.host}:{smtp.port}: {exc.__class__.__name__}: {exc}") from exc
