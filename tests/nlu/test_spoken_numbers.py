"""digits_from_speech: spoken numbers in Vosk transcripts rewritten as digits, every other word kept."""

from __future__ import annotations

import random

import pytest

from nlu.spoken_numbers import digits_from_speech

FRENCH = [
    # phone numbers, said in pairs
    (
        "mon numéro c'est zéro six douze trente quatre cinquante six soixante dix-huit",
        "mon numéro c'est 06 12 34 56 78",
        "phone-pairs",
    ),
    ("zéro six douze trente-quatre cinquante-six soixante-dix-huit", "06 12 34 56 78", "phone-hyphens"),
    ("zéro sept quatre vingt dix onze vingt et un seize", "07 90 11 21 16", "phone-quatre-vingt-dix"),
    ("zéro un quarante cinq soixante-sept quatre-vingt-neuf zéro deux", "01 45 67 89 02", "phone-ends-zero-digit"),
    ("zéro six un deux trois quatre cinq six sept huit", "0612345678", "phone-digit-by-digit"),
    # contract numbers
    ("quatre cinq six sept huit neuf", "456789", "contract-digits"),
    ("mon contrat quatre cinq six sept huit neuf merci", "mon contrat 456789 merci", "contract-in-sentence"),
    (
        "euh oui bonjour mon contrat c'est le quatre cinq six sept huit neuf et je voudrais savoir",
        "euh oui bonjour mon contrat c'est le 456789 et je voudrais savoir",
        "contract-mixed-sentence",
    ),
    ("un deux trois", "123", "un-in-digit-run"),
    # compound values
    ("vingt et un", "21", "vingt-et-un"),
    ("vingt-et-un", "21", "vingt-et-un-hyphens"),
    ("trente et une", "31", "trente-et-une"),
    ("soixante-dix", "70", "soixante-dix"),
    ("soixante et onze", "71", "soixante-et-onze"),
    ("soixante dix sept", "77", "soixante-dix-sept-spaces"),
    ("quatre-vingts", "80", "quatre-vingts"),
    ("quatre vingt un", "81", "quatre-vingt-un"),
    ("quatre vingt dix", "90", "quatre-vingt-dix-spaces"),
    ("quatre-vingt-dix-neuf", "99", "quatre-vingt-dix-neuf"),
    ("septante-sept", "77", "septante"),
    ("huitante huit octante", "88 80", "huitante-octante"),
    ("nonante neuf", "99", "nonante"),
    ("dix sept", "17", "dix-sept-spaces"),
    ("cent", "100", "cent"),
    ("deux cents", "200", "deux-cents"),
    ("cent un", "101", "cent-un"),
    ("mille", "1000", "mille"),
    ("mille deux cents", "1200", "mille-deux-cents"),
    ("trois cent quarante cinq mille", "345000", "hundreds-of-thousands"),
    ("deux millions trois cent mille", "2300000", "millions"),
    ("un million", "1000000", "un-million"),
    # amounts
    ("mille deux cents euros", "1200 euros", "amount-thousands"),
    ("cinquante euros", "50 euros", "amount-tens"),
    ("deux cent cinquante euros et trente centimes", "250 euros et 30 centimes", "amount-centimes"),
    # dates and years
    ("le quinze mars", "le 15 mars", "date-day-month"),
    ("deux mille vingt six", "2026", "year"),
    ("le quinze mars deux mille vingt-sept", "le 15 mars 2027", "date-with-year"),
    ("dix neuf cent quatre vingt dix", "1990", "year-in-hundreds"),
    ("le premier avril", "le premier avril", "ordinal-stays"),
    # number boundaries
    ("vingt trente", "20 30", "tens-then-tens"),
    ("douze trente", "12 30", "teen-then-tens"),
    ("trente zéro", "30 0", "zero-does-not-continue-tens"),
    ("vingt et trente", "20 et 30", "et-outside-a-number"),
    ("trois euros quatre", "3 euros 4", "word-separates-numbers"),
    # words that stay words
    ("j'ai un problème", "j'ai un problème", "lone-un"),
    ("une question", "une question", "lone-une"),
    ("peut-être c'est-à-dire", "peut-être c'est-à-dire", "hyphenated-words"),
    ("  bonjour   madame  ", "bonjour madame", "spaces-collapsed"),
    ("Vingt Deux", "22", "capitalised"),
]

ENGLISH = [
    ("my contract is four five six seven eight nine", "my contract is 456789", "contract-digits"),
    ("oh seven seven double oh nine double oh one two three", "07700900123", "uk-phone-double-oh"),
    ("oh two oh seven nine four six oh seven five eight", "02079460758", "uk-phone-oh"),
    ("zero one six one", "0161", "zero"),
    ("double three", "33", "double"),
    ("triple seven", "777", "triple"),
    ("one two three", "123", "one-in-digit-run"),
    ("twenty one", "21", "twenty-one-spaces"),
    ("twenty-one", "21", "twenty-one-hyphen"),
    ("ninety nine", "99", "ninety-nine"),
    ("nineteen", "19", "nineteen"),
    ("one hundred and five", "105", "hundred-and"),
    ("a hundred pounds", "100 pounds", "a-hundred"),
    ("a thousand", "1000", "a-thousand"),
    ("two thousand and five", "2005", "thousand-and"),
    ("three hundred and forty five thousand", "345000", "hundreds-of-thousands"),
    ("twelve hundred pounds", "1200 pounds", "twelve-hundred"),
    ("fifty pounds and twenty pence", "50 pounds and 20 pence", "amount-pence"),
    ("the third of june two thousand and twenty six", "the third of june 2026", "date-ordinal-year"),
    ("twenty thirty", "20 30", "tens-then-tens"),
    ("I have one card", "I have one card", "lone-one"),
    ("oh I see", "oh I see", "oh-stays"),
    ("double check that", "double check that", "double-stays"),
    ("a lot and more", "a lot and more", "a-and-stay"),
    ("the first one", "the first one", "ordinal-and-lone-one"),
]


@pytest.mark.parametrize(("text", "expected"), [case[:2] for case in FRENCH], ids=[case[2] for case in FRENCH])
def test_french(text: str, expected: str) -> None:
    assert digits_from_speech(text, "fr") == expected


@pytest.mark.parametrize(("text", "expected"), [case[:2] for case in ENGLISH], ids=[case[2] for case in ENGLISH])
def test_english(text: str, expected: str) -> None:
    assert digits_from_speech(text, "en") == expected


@pytest.mark.parametrize(
    ("text", "language", "expected"),
    [
        ("sept cent mille", "en", "sept cent mille"),
        ("four five", "fr", "four five"),
        ("quatre cinq", "de", "quatre cinq"),
        ("  quatre   cinq ", "de", "  quatre   cinq "),
    ],
    ids=["french-words-in-english", "english-words-in-french", "other-language", "other-language-verbatim"],
)
def test_words_of_another_language_stay(text: str, language: str, expected: str) -> None:
    assert digits_from_speech(text, language) == expected


# --- property-style checks over generated sentences (fixed seed, so failures reproduce) ---

FRENCH_NUMBER_WORDS = """
    zéro zero un une deux trois quatre cinq six sept huit neuf dix onze douze treize quatorze quinze seize
    vingt vingts trente quarante cinquante soixante septante huitante octante nonante cent cents mille
    million millions milliard milliards
"""
ENGLISH_NUMBER_WORDS = """
    zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen
    seventeen eighteen nineteen twenty thirty forty fifty sixty seventy eighty ninety hundred thousand million billion
"""
NUMBER_WORDS = {"fr": set(FRENCH_NUMBER_WORDS.split()), "en": set(ENGLISH_NUMBER_WORDS.split())}
CONNECTORS = ["et", "and", "a", "oh", "o", "double", "triple"]
"""Words that belong to numbers only next to number words."""
PLAIN_TEXT = """
    bonjour madame oui non euh c'est le la mon contrat numéro carte euros centimes pounds pence mars june
    premier first second peut-être l'un quelqu'un dixième vingtaine centaine milliers hundreds someone none
    often voudrais savoir I have card problème aujourd'hui tomorrow
"""
PLAIN_WORDS = PLAIN_TEXT.split()
PHRASES = {
    "fr": [
        ("zéro six douze trente quatre", "06 12 34"),
        ("quatre cinq six", "456"),
        ("mille deux cents", "1200"),
        ("quatre-vingt-dix-neuf", "99"),
        ("soixante et onze", "71"),
        ("deux mille vingt six", "2026"),
        ("vingt et un", "21"),
        ("un deux", "12"),
        ("cent", "100"),
    ],
    "en": [
        ("oh seven seven double oh nine", "077009"),
        ("four five six", "456"),
        ("one hundred and five", "105"),
        ("twenty-one", "21"),
        ("a thousand", "1000"),
        ("triple seven", "777"),
        ("nineteen", "19"),
    ],
}


def _plain_sentences(seed: int, count: int) -> list[str]:
    rng = random.Random(seed)
    words = PLAIN_WORDS + CONNECTORS
    return [" ".join(rng.choices(words, k=rng.randint(1, 12))) for _ in range(count)]


def _mixed_sentences(language: str, seed: int, count: int) -> list[tuple[str, str]]:
    """Sentences of plain words and number phrases, a plain word between phrases, with the expected rewrite."""
    rng = random.Random(seed)
    sentences = []
    for _ in range(count):
        spoken: list[str] = []
        written: list[str] = []
        for _ in range(rng.randint(1, 4)):
            plain = rng.choices(PLAIN_WORDS, k=rng.randint(1, 3))
            phrase, digits = rng.choice(PHRASES[language])
            spoken += [*plain, phrase]
            written += [*plain, digits]
        sentences.append((" ".join(spoken), " ".join(written)))
    return sentences


@pytest.mark.parametrize("language", ["fr", "en"])
@pytest.mark.parametrize("text", _plain_sentences(seed=22, count=60))
def test_text_without_number_words_is_unchanged(text: str, language: str) -> None:
    assert digits_from_speech(text, language) == text


@pytest.mark.parametrize("language", ["fr", "en"])
def test_converted_runs_leave_no_number_word(language: str) -> None:
    for text, expected in _mixed_sentences(language, seed=11, count=200):
        result = digits_from_speech(text, language)
        assert result == expected, text
        leftovers = [word for word in result.split() if word in NUMBER_WORDS[language]]
        assert leftovers == [], text
