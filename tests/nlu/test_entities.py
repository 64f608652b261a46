"""normalize_entities: NLU entity values in canonical form (E.164, digits, decimal amounts, ISO dates)."""

from __future__ import annotations

from datetime import date

import pytest

from nlu.entities import normalize_entities

TODAY = date(2026, 11, 22)
"""A Sunday."""

CASES = [
    # phone numbers -> E.164
    ("phone_number", "0612345678", "fr", "+33612345678", "fr-national"),
    ("phone_number", "06 12 34 56 78", "fr", "+33612345678", "fr-national-spaces"),
    ("phone_number", "06.12.34.56.78", "fr", "+33612345678", "fr-national-dots"),
    ("phone_number", "+33 6 12 34 56 78", "fr", "+33612345678", "fr-international"),
    ("phone_number", "+33 (0)6 12 34 56 78", "fr", "+33612345678", "fr-international-trunk-zero"),
    ("phone_number", "0033612345678", "fr", "+33612345678", "fr-double-zero"),
    ("phone_number", "01 45 67 89 02", "fr", "+33145678902", "fr-landline"),
    ("phone_number", "06 12 34", "fr", "061234", "fr-too-short"),
    ("phone_number", "06 12 34 56 78 90", "fr", "061234567890", "fr-too-long"),
    ("phone_number", "+44 7700 900123", "fr", "+447700900123", "fr-caller-foreign-number"),
    ("phone_number", "07700 900123", "en", "+447700900123", "uk-national"),
    ("phone_number", "07700900123", "en", "+447700900123", "uk-national-digits"),
    ("phone_number", "+44 7700 900123", "en", "+447700900123", "uk-international"),
    ("phone_number", "0044 20 7946 0758", "en", "+442079460758", "uk-double-zero"),
    ("phone_number", "0770", "en", "0770", "uk-too-short"),
    # contract numbers -> digits
    ("contract_number", "456789", "fr", "456789", "contract-digits"),
    ("contract_number", " 456 789 ", "fr", "456789", "contract-spaces"),
    ("contract_number", "CT-4567-89", "en", "456789", "contract-letters"),
    # amounts -> "units.cents CODE"
    ("amount", "1200 euros", "fr", "1200.00 EUR", "euros"),
    ("amount", "250 euros et 30 centimes", "fr", "250.30 EUR", "euros-et-centimes"),
    ("amount", "2 euros 50", "fr", "2.50 EUR", "euros-then-cents"),
    ("amount", "50 €", "fr", "50.00 EUR", "euro-sign"),
    ("amount", "1 200,50 €", "fr", "1200.50 EUR", "french-grouping-and-decimals"),
    ("amount", "1.200,5 €", "fr", "1200.50 EUR", "dot-grouping-one-decimal"),
    ("amount", "30 centimes", "fr", "0.30 EUR", "centimes-only"),
    ("amount", "1200", "fr", "1200.00 EUR", "fr-default-currency"),
    ("amount", "£300", "en", "300.00 GBP", "pound-sign"),
    ("amount", "300 pounds", "en", "300.00 GBP", "pounds"),
    ("amount", "1,200.50 pounds", "en", "1200.50 GBP", "english-grouping"),
    ("amount", "50 pounds and 20 pence", "en", "50.20 GBP", "pounds-and-pence"),
    ("amount", "50p", "en", "0.50 GBP", "pence-only"),
    ("amount", "75", "en", "75.00 GBP", "en-default-currency"),
    ("amount", "20 dollars", "en", "20.00 USD", "dollars"),
    ("amount", "beaucoup", "fr", "beaucoup", "amount-unparseable"),
    # dates -> ISO, relative to TODAY
    ("date", "le 15 mars", "fr", "2027-03-15", "fr-day-month-next-year"),
    ("date", "le 25 novembre", "fr", "2026-11-25", "fr-day-month-this-year"),
    ("date", "le 22 novembre", "fr", "2026-11-22", "fr-today-counts"),
    ("date", "le 21 novembre", "fr", "2027-11-21", "fr-yesterday-is-next-year"),
    ("date", "15 mars 2027", "fr", "2027-03-15", "fr-with-year"),
    ("date", "le 1er décembre", "fr", "2026-12-01", "fr-1er"),
    ("date", "le premier décembre", "fr", "2026-12-01", "fr-premier"),
    ("date", "le 29 février", "fr", "2028-02-29", "fr-next-leap-day"),
    ("date", "15/03", "fr", "2027-03-15", "numeric-day-month"),
    ("date", "15/03/2027", "fr", "2027-03-15", "numeric-full"),
    ("date", "05.12.26", "fr", "2026-12-05", "numeric-two-digit-year"),
    ("date", "2027-01-02", "en", "2027-01-02", "iso"),
    ("date", "le 15", "fr", "2026-12-15", "fr-day-only-next-month"),
    ("date", "le 30", "fr", "2026-11-30", "fr-day-only-this-month"),
    ("date", "mardi", "fr", "2026-11-24", "fr-weekday"),
    ("date", "lundi", "fr", "2026-11-23", "fr-weekday-tomorrow"),
    ("date", "dimanche", "fr", "2026-11-29", "fr-weekday-today-excluded"),
    ("date", "demain", "fr", "2026-11-23", "fr-demain"),
    ("date", "après-demain", "fr", "2026-11-24", "fr-apres-demain"),
    ("date", "aujourd'hui", "fr", "2026-11-22", "fr-aujourdhui"),
    ("date", "aujourd’hui", "fr", "2026-11-22", "fr-aujourdhui-curly-apostrophe"),
    ("date", "tomorrow", "en", "2026-11-23", "en-tomorrow"),
    ("date", "today", "en", "2026-11-22", "en-today"),
    ("date", "friday", "en", "2026-11-27", "en-weekday"),
    ("date", "the 3rd of june", "en", "2027-06-03", "en-ordinal-digits"),
    ("date", "the third of june", "en", "2027-06-03", "en-ordinal-word"),
    ("date", "the 20 first of december", "en", "2026-12-21", "en-compound-ordinal"),
    ("date", "june 3", "en", "2027-06-03", "en-month-day"),
    ("date", "3 june 2027", "en", "2027-06-03", "en-day-month-year"),
    ("date", "le 31 février", "fr", "le 31 février", "impossible-date-kept"),
    ("date", "31/02/2027", "fr", "31/02/2027", "impossible-numeric-date-kept"),
    ("date", "bientôt", "fr", "bientôt", "unparseable-date-kept"),
    # anything else -> stripped, lower-cased
    ("card_type", " Visa ", "fr", "visa", "card-type"),
    ("card_type", "MasterCard", "en", "mastercard", "card-type-en"),
    ("reason", "  Perte De Carte", "fr", "perte de carte", "other-entity"),
]


@pytest.mark.parametrize(
    ("entity", "value", "language", "expected"), [case[:4] for case in CASES], ids=[case[4] for case in CASES]
)
def test_normalize_entity(entity: str, value: str, language: str, expected: str) -> None:
    assert normalize_entities({entity: value}, language, TODAY) == {entity: expected}


def test_all_entities_of_an_utterance_at_once() -> None:
    entities = {"contract_number": "456789", "amount": "50 €", "date": "mardi", "card_type": "CB"}
    assert normalize_entities(entities, "fr", TODAY) == {
        "contract_number": "456789",
        "amount": "50.00 EUR",
        "date": "2026-11-24",
        "card_type": "cb",
    }


def test_no_entities() -> None:
    assert normalize_entities({}, "fr", TODAY) == {}
