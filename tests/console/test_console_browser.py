"""The console in a real browser (Debian's Chromium driven by Playwright, never a downloaded browser): login and
roles, a trainee working a message while its audio plays and the transcript highlight follows, an ops user
adding an example then training and publishing, and a test call from Chromium's fake microphone.

Screenshots of the main pages are written to docs/screenshots/ (shown in the README)."""

from __future__ import annotations

import shutil
import time
import wave
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page, Playwright, expect, sync_playwright

from callbot.mailbox.recording import MessageMeta, MessageRecording
from callbot.mailbox.service import message_path
from callbot.mailbox.store import MailboxStore
from callbot.simulator import read_wav_as_line_pcm
from callbot.storage.database import make_engine
from telephony.resample import resample_pcm16
from tests.conftest import ROOT, TEST_PASSWORD, Server, open_bot, speech_clip, staff_token
from tests.test_call_e2e import place_call, silence_wav

CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOTS = ROOT / "docs" / "screenshots"
FLAGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--autoplay-policy=no-user-gesture-required",
]


@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    if not CHROMIUM.is_file():
        pytest.fail("Chromium is needed at /usr/bin/chromium: `apt-get install chromium` (make test installs it)")
    with sync_playwright() as driver:
        yield driver


def launch(playwright: Playwright, *extra: str) -> Browser:
    return playwright.chromium.launch(executable_path=str(CHROMIUM), args=[*FLAGS, *extra])


def login(page: Page, server: Server, username: str, password: str = TEST_PASSWORD) -> None:
    page.goto(f"{server.url}/login")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")


def shot(page: Page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def seed_message(server: Server, clip: Path, caller: str = "+33612345678") -> str:
    """A message as a call leaves it (recording finished); the served worker transcribes it with Vosk."""
    engine = make_engine(server.db_url)
    store = MailboxStore(engine)
    item_id = "e1" * 16
    started = datetime.now(UTC)
    meta = MessageMeta(item_id, "c1" * 16, caller, "+33900000000", "closed", "fr", started.isoformat())
    relative, path = message_path(server.data_dir / "recordings", item_id, started)
    recording = MessageRecording(path, meta)
    recording.write(b"\0\0" * 4000 + read_wav_as_line_pcm(clip) + b"\0\0" * 8000)
    store.create(meta, relative)
    store.finish_recording(item_id, recording.close())
    path.with_suffix(".json").unlink()
    engine.dispose()
    return item_id


def wait_transcribed(server: Server, item_id: str) -> None:
    api = server.api
    for _ in range(120):
        if api.get(f"/api/mailbox/{item_id}").json()["transcription"] == "transcribed":
            return
        time.sleep(0.5)
    raise AssertionError("the message was not transcribed")


def test_login_roles_and_a_trainee_working_a_message(serve, playwright, ko_model):
    server = serve(CALLBOT_VOSK_MODEL=str(ko_model))
    staff_token(server.db_url, "lea", "trainee")
    staff_token(server.db_url, "hugo", "ops")
    item_id = seed_message(server, speech_clip("fr", "fleurs-fr-003.wav"))
    wait_transcribed(server, item_id)
    browser = launch(playwright)
    page = browser.new_page(viewport={"width": 1280, "height": 860})

    page.goto(f"{server.url}/mailbox")
    expect(page).to_have_url(f"{server.url}/login?next=/mailbox")
    shot(page, "login")
    login(page, server, "lea", "not the password")
    expect(page.locator(".error")).to_contain_text("unknown user or wrong password")
    login(page, server, "lea")
    expect(page).to_have_url(f"{server.url}/mailbox")
    expect(page.locator("#mailbox-list tbody tr")).to_have_count(1)
    shot(page, "mailbox")
    page.goto(f"{server.url}/dashboard")
    expect(page.locator("main")).to_contain_text("Vous n'avez pas accès à cette page")
    page.goto(f"{server.url}/mailbox")
    page.keyboard.press("j")
    page.keyboard.press("Enter")
    expect(page).to_have_url(f"{server.url}/mailbox/{item_id}")

    words = page.locator("#transcript .w")
    assert words.count() > 5
    page.evaluate("document.getElementById('player').play()")
    current = page.locator("#transcript .w.current")
    expect(current).to_have_count(1, timeout=15000)
    first = float(current.get_attribute("data-start") or 0)
    moved = (
        "(first) => { const w = document.querySelector('#transcript .w.current');"
        " return w && Number(w.dataset.start) > first; }"
    )
    page.wait_for_function(moved, arg=first, timeout=15000)
    target = words.nth(words.count() - 2)
    target.click()
    start = float(target.get_attribute("data-start") or 0)
    position = page.evaluate("document.getElementById('player').currentTime")
    assert abs(position - start) < 0.5, (position, start)
    shot(page, "mailbox-item")

    page.click("#take")
    expect(page.locator("#status")).to_have_text("Attribué")
    page.click("#to-in_progress")
    page.select_option("#correct-reason", "early_repayment")
    page.click("#save-reason")
    page.fill("#note", "Rappel prévu demain matin")
    page.click("#add-note")
    page.click("#to-called_back")
    expect(page.locator("#status")).to_have_text("Rappelé")
    detail = server.api.get(f"/api/mailbox/{item_id}").json()
    assert detail["status"] == "called_back" and detail["assignee"] == "lea"
    assert detail["corrected_reason"] == "early_repayment"
    assert [e["action"] for e in detail["events"]][-4:] == ["status", "reason_corrected", "note", "status"]
    page.goto(f"{server.url}/progress")
    expect(page.locator("#handled")).to_have_text("1")
    shot(page, "progress")

    page.context.clear_cookies()
    login(page, server, "hugo")
    expect(page).to_have_url(f"{server.url}/dashboard")
    page.goto(f"{server.url}/ops/corrections")
    expect(page.locator("#corrections")).to_contain_text("early_repayment")
    shot(page, "corrections")
    page.goto(f"{server.url}/ops/agents")
    shot(page, "agents")
    browser.close()


def test_ops_adds_an_example_trains_and_publishes(serve, playwright, tmp_path, fr_nlu_model):
    models = tmp_path / "models" / "nlu"
    models.mkdir(parents=True)
    shutil.copy(fr_nlu_model, models / fr_nlu_model.name)
    (models / f"{open_bot().name}.published").write_text(fr_nlu_model.name)  # the model in service before the change
    server = serve(CALLBOT_MODELS_DIR=str(tmp_path / "models"))
    staff_token(server.db_url, "hugo", "ops")
    browser = launch(playwright)
    page = browser.new_page(viewport={"width": 1280, "height": 860})
    login(page, server, "hugo")
    page.goto(f"{server.url}/ops/intents")
    shot(page, "intents")
    page.click("a[href='/ops/intents/opening_hours']")
    page.fill("#new-example", "vous êtes ouverts le samedi après-midi")
    page.click("#add-example")
    expect(page.locator("[role=status]")).to_contain_text("Enregistré")
    expect(page.locator('#examples input[name=new][value="vous êtes ouverts le samedi après-midi"]')).to_have_count(1)
    page.goto(f"{server.url}/ops/config?file=routing.yml")
    shot(page, "config")
    page.goto(f"{server.url}/ops/versions")
    expect(page.locator("main")).to_contain_text("opening_hours: + vous êtes ouverts le samedi après-midi")
    shot(page, "versions")

    page.goto(f"{server.url}/ops/training")
    page.click("#train")
    expect(page.locator("#publish")).to_be_visible(timeout=400_000)
    expect(page.locator("#candidate-accuracy")).to_contain_text("%")
    expect(page.locator("#accuracy-change")).to_contain_text("pts")  # compared with the published model
    shot(page, "training")
    page.click("#publish")
    expect(page.locator("#job-state")).to_have_text("published")
    published = (models / f"{open_bot().name}.published").read_text().strip()
    assert published != fr_nlu_model.name and (models / published).is_file(), "the new model is the one in service"
    browser.close()


def fake_microphone(path: Path) -> Path:
    """A caller for Chromium's fake microphone: silence, a French request, then silence (the file loops)."""
    speech = read_wav_as_line_pcm(speech_clip("fr", "stp-fr-000.wav"))
    pcm = resample_pcm16(b"\0\0" * 8000 + speech + b"\0\0" * 24000, 8000, 16000)
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(16000)
        wav.writeframes(pcm)
    return path


def test_a_test_call_from_the_browser(serve, playwright, ko_model, tmp_path):
    server = serve(CALLBOT_VOSK_MODEL=str(ko_model))
    staff_token(server.db_url, "hugo", "ops")
    microphone = fake_microphone(tmp_path / "caller.wav")
    browser = launch(
        playwright,
        "--use-fake-ui-for-media-stream",
        "--use-fake-device-for-media-stream",
        f"--use-file-for-fake-audio-capture={microphone}",
    )
    page = browser.new_page(viewport={"width": 1280, "height": 860})
    login(page, server, "hugo")
    page.goto(f"{server.url}/ops/test-call")
    page.click("#call")
    expect(page.locator("#call-state")).to_have_text("connected", timeout=15000)
    expect(page.locator("#turns li.bot").first).to_contain_text("Bonjour et bienvenue")
    page.wait_for_function("() => window.softphone.played > 16000 * 1.0", timeout=20000)
    caller_turn = page.locator("#turns li.caller").first
    expect(caller_turn).to_be_visible(timeout=60000)
    shot(page, "test-call")
    assert caller_turn.inner_text().strip() not in ("caller", "")
    calls = server.api.get("/api/calls").json()
    assert calls and calls[0]["provider"] == "browser" and calls[0]["from_number"] == "console:hugo"
    call = server.api.get(f"/api/calls/{calls[0]['id']}").json()
    assert any(t["speaker"] == "caller" and t["text"] for t in call["turns"])
    page.goto(f"{server.url}/dashboard")
    expect(page.locator("#calls-count")).to_have_text("0")  # test calls stay out of the figures
    place_call(server, silence_wav(tmp_path / "caller.wav", 0), "--dtmf", "3", "--barge-in", "--speed", "8")
    place_call(server, silence_wav(tmp_path / "caller.wav", 0), "--dtmf", "0", "--barge-in", "--speed", "8")
    page.goto(f"{server.url}/dashboard")
    expect(page.locator("#calls-count")).to_have_text("2")
    expect(page.locator("#containment")).to_have_text("50.0 %")
    shot(page, "dashboard")
    page.goto(f"{server.url}/calls/{calls[0]['id']}")
    expect(page.locator("main")).to_contain_text("nlu_unavailable")
    shot(page, "call")
    browser.close()
    assert httpx.get(f"{server.url}/healthz").status_code == 200
