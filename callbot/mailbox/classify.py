"""Classifying a message: the reason the caller left it, as one of the bot's intents.

The NLU is trained on short requests; a message is several sentences ("hello, it's Mrs Martin, my card was
stolen yesterday, call me back on..."). So the whole message is parsed, and so is each window of a dozen words;
the reason is the most confident *request* among them (greetings, goodbyes, yes/no, "leave a message" and
out-of-scope say nothing about why the caller called). Entities come from the whole message.
"""

from __future__ import annotations

from callbot.frames import NluResult
from callbot.mailbox.store import Classified
from nlu.client import RasaClient
from nlu.understanding import understand

NOT_A_REASON = frozenset({"greet", "goodbye", "affirm", "deny", "repeat_please", "out_of_scope", "leave_message"})
WINDOW = 12
STEP = 6


async def classify_message(client: RasaClient, text: str, language: str, timezone: str) -> Classified:
    whole = await understand(client, text, language, timezone)
    best: NluResult | None = whole if whole.intent not in NOT_A_REASON else None
    words = text.split()
    if len(words) > WINDOW:
        for start in range(0, len(words) - WINDOW + STEP, STEP):
            part = await understand(client, " ".join(words[start : start + WINDOW]), language, timezone)
            if part.intent in NOT_A_REASON or part.intent is None:
                continue
            if best is None or part.confidence > best.confidence:
                best = part
    chosen = best or whole
    confidence = round(chosen.confidence, 4) if chosen.intent else None
    return Classified(chosen.intent, confidence, {**chosen.entity_map, **whole.entity_map})
