"""From a transcript to what the dialogue needs: spoken numbers as digits, Rasa, normalised entities."""

from __future__ import annotations

import datetime
from dataclasses import replace
from zoneinfo import ZoneInfo

from callbot.frames import NluResult
from nlu.client import RasaClient
from nlu.entities import normalize_entities
from nlu.spoken_numbers import digits_from_speech


async def understand(client: RasaClient, transcript: str, language: str, timezone: str) -> NluResult:
    """Parse a caller's transcript. Recognisers write numbers as words ("zéro six douze..."); the NLU's
    regexes and the answers need digits, and entity values come out normalised (E.164 phone numbers,
    ISO dates, amounts with a currency code, bare contract numbers)."""
    text = digits_from_speech(transcript, language)
    result = await client.parse(text)
    today = datetime.datetime.now(ZoneInfo(timezone)).date()
    entities = normalize_entities(result.entity_map, language, today)
    return replace(result, entities=tuple(sorted(entities.items())))
