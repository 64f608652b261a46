"""New-message e-mails through a real local SMTP server (aiosmtpd) with STARTTLS and login: a server that
refuses the first attempt gets the message on the retry; one that always refuses ends in a recorded failure."""

from __future__ import annotations

import asyncio
import email
import email.policy
import ssl
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime
from email.message import Message
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from callbot.mailbox.notify import Smtp
from callbot.mailbox.recording import MessageMeta, MessageRecording
from callbot.mailbox.store import Classified, MailboxStore, Transcribed
from callbot.mailbox.worker import MailboxWorker, WorkerSettings
from callbot.storage.database import make_engine, migrate
from tests.conftest import free_port

USER, PASSWORD = "callbot", "smtp-password-for-tests"


class Inbox:
    """An SMTP server's message handler: refuses the first ``refusals`` messages with 451, then accepts."""

    def __init__(self, refusals: int) -> None:
        self.refusals = refusals
        self.attempts = 0
        self.received: list[Message] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.attempts += 1
        if self.attempts <= self.refusals:
            return "451 4.3.0 Mailbox busy, try again later"
        self.received.append(email.message_from_bytes(envelope.content, policy=email.policy.default))
        return "250 OK"


def _authenticator(server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> AuthResult:
    ok = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == (
        USER.encode(),
        PASSWORD.encode(),
    )
    return AuthResult(success=ok, handled=False)


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("tls")
    key, cert = folder / "key.pem", folder / "cert.pem"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost"),
            *("-keyout", str(key), "-out", str(cert), "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


def _server(inbox: Inbox, certificate: tuple[Path, Path]) -> Iterator[int]:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(str(certificate[0]), str(certificate[1]))
    port = free_port()
    controller = Controller(
        inbox,
        hostname="127.0.0.1",
        port=port,
        tls_context=context,
        require_starttls=True,
        authenticator=_authenticator,
        auth_require_tls=True,
    )
    controller.start()
    yield port
    controller.stop()


@pytest.fixture
def store(tmp_path: Path) -> Iterator[tuple[MailboxStore, Path]]:
    engine = make_engine(f"sqlite:///{tmp_path / 'mail.db'}")
    migrate(engine)
    recordings = tmp_path / "recordings"
    store = MailboxStore(engine, notify=True)
    meta = MessageMeta(
        "f" * 32, "c" * 32, "+33612345678", "+33900000000", "closed", "fr", datetime.now(UTC).isoformat()
    )
    recording = MessageRecording(recordings / "2026" / "12" / f"{'f' * 32}.wav", meta)
    recording.write(b"\x10\x00" * 8000)
    recording.close()
    store.create(meta, f"2026/12/{'f' * 32}.wav")
    store.finish_recording(meta.item_id, 1.0)
    transcript = "bonjour je voudrais un décompte de remboursement anticipé"
    store.save_transcription(
        meta.item_id,
        Transcribed(transcript, [["bonjour", 0.1, 0.4, 0.9]], [], None, None),
        Classified("early_repayment", 0.87, {"contract_number": "A123456"}),
    )
    yield store, recordings
    engine.dispose()


def _worker(store: MailboxStore, recordings: Path, port: int, cert: Path, password: str = PASSWORD) -> MailboxWorker:
    smtp = Smtp(
        host="127.0.0.1",
        port=port,
        sender="callbot@centre.example",
        recipients=("equipe@centre.example",),
        starttls=True,
        username=USER,
        password=password,
        ca_file=cert,
        attach_audio=True,
    )
    settings = WorkerSettings(recordings, "Europe/Paris", retry_s=0.2, console_url="https://callbot.example.com")

    async def no_nlu(text: str, language: str) -> Classified:
        raise AssertionError("already classified")

    return MailboxWorker(store, settings, None, no_nlu, asyncio.to_thread, smtp)  # type: ignore[arg-type]


async def _until(store: MailboxStore, worker: MailboxWorker, state: str, timeout: float = 20) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while store.get("f" * 32).notify_state != state:
        assert asyncio.get_running_loop().time() < deadline, store.get("f" * 32).notify_error
        await worker.step()
        await asyncio.sleep(0.05)


def test_a_refused_first_attempt_is_retried_and_the_mail_carries_the_message(store, certificate):
    mailbox, recordings = store
    inbox = Inbox(refusals=1)
    for port in _server(inbox, certificate):
        asyncio.run(_until(mailbox, _worker(mailbox, recordings, port, certificate[0]), "sent"))
    assert inbox.attempts == 2
    [mail] = inbox.received
    assert mail["Subject"] == "[callbot] Nouveau message — closed — +33612345678"
    assert mail["To"] == "equipe@centre.example"
    body, attachment = [part for part in mail.walk() if not part.is_multipart()]
    text = body.get_payload(decode=True).decode()
    assert "bonjour je voudrais un décompte de remboursement anticipé" in text
    assert "Motif détecté: early_repayment (87%)" in text
    assert f"https://callbot.example.com/mailbox/{'f' * 32}" in text
    assert attachment.get_content_type() == "audio/wav"
    assert attachment.get_payload(decode=True)[44:] == b"\x10\x00" * 8000
    row = mailbox.get("f" * 32)
    assert row.notify_attempts == 2 and row.notify_error is None
    assert [e.action for e in row.events][-1] == "notified"


def test_wrong_credentials_end_in_a_recorded_failure(store, certificate):
    mailbox, recordings = store
    inbox = Inbox(refusals=0)
    for port in _server(inbox, certificate):
        worker = _worker(mailbox, recordings, port, certificate[0], password="wrong")
        asyncio.run(_until(mailbox, worker, "failed"))
    assert inbox.received == []
    row = mailbox.get("f" * 32)
    assert row.notify_attempts == 5 and "SMTPAuthenticationError" in (row.notify_error or "")
    assert [e.action for e in row.events][-1] == "notification_failed"
