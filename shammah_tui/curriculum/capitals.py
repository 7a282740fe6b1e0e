"""capitals: the capital city of a country (only countries whose capital is not in dispute)."""

from __future__ import annotations

import re

from shammah_tui.curriculum.base import QuestionKind, TemplatedFamily, loose

#: Country as phrased in questions → capital. Countries with contested or
#: recently moved capitals are left out: answers must be exact.
CAPITALS: dict[str, str] = {
    "France": "Paris", "Germany": "Berlin", "Italy": "Rome", "Spain": "Madrid",
    "Portugal": "Lisbon", "the United Kingdom": "London", "Ireland": "Dublin",
    "the Netherlands": "Amsterdam", "Belgium": "Brussels", "Switzerland": "Bern",
    "Austria": "Vienna", "Poland": "Warsaw", "the Czech Republic": "Prague",
    "Slovakia": "Bratislava", "Hungary": "Budapest", "Romania": "Bucharest", "Bulgaria": "Sofia",
    "Greece": "Athens", "Turkey": "Ankara", "Denmark": "Copenhagen", "Norway": "Oslo",
    "Sweden": "Stockholm", "Finland": "Helsinki", "Iceland": "Reykjavik", "Estonia": "Tallinn",
    "Latvia": "Riga", "Lithuania": "Vilnius", "Ukraine": "Kyiv", "Russia": "Moscow",
    "Serbia": "Belgrade", "Croatia": "Zagreb", "Slovenia": "Ljubljana", "Albania": "Tirana",
    "Belarus": "Minsk", "Cyprus": "Nicosia", "Malta": "Valletta", "Armenia": "Yerevan",
    "Azerbaijan": "Baku", "Egypt": "Cairo", "Morocco": "Rabat", "Algeria": "Algiers",
    "Tunisia": "Tunis", "Nigeria": "Abuja", "Ghana": "Accra", "Kenya": "Nairobi",
    "Ethiopia": "Addis Ababa", "Senegal": "Dakar", "Uganda": "Kampala", "Zimbabwe": "Harare",
    "Zambia": "Lusaka", "Angola": "Luanda", "Rwanda": "Kigali", "Canada": "Ottawa",
    "the United States": "Washington, D.C.", "Mexico": "Mexico City", "Cuba": "Havana",
    "Jamaica": "Kingston", "Brazil": "Brasília", "Argentina": "Buenos Aires", "Chile": "Santiago",
    "Peru": "Lima", "Colombia": "Bogotá", "Venezuela": "Caracas", "Ecuador": "Quito",
    "Uruguay": "Montevideo", "Paraguay": "Asunción", "China": "Beijing", "Japan": "Tokyo",
    "South Korea": "Seoul", "North Korea": "Pyongyang", "India": "New Delhi",
    "Pakistan": "Islamabad", "Bangladesh": "Dhaka", "Nepal": "Kathmandu", "Thailand": "Bangkok",
    "Vietnam": "Hanoi", "Cambodia": "Phnom Penh", "Laos": "Vientiane",
    "the Philippines": "Manila", "Malaysia": "Kuala Lumpur", "Mongolia": "Ulaanbaatar",
    "Iran": "Tehran", "Iraq": "Baghdad", "Saudi Arabia": "Riyadh", "Jordan": "Amman",
    "Lebanon": "Beirut", "Syria": "Damascus", "Qatar": "Doha", "Afghanistan": "Kabul",
    "Kazakhstan": "Astana", "Uzbekistan": "Tashkent", "Australia": "Canberra",
    "New Zealand": "Wellington", "Fiji": "Suva",
}
_COUNTRY_ALIASES = {
    "uk": "the United Kingdom", "britain": "the United Kingdom",
    "great britain": "the United Kingdom", "us": "the United States",
    "usa": "the United States", "united states of america": "the United States",
    "america": "the United States", "czechia": "the Czech Republic", "holland": "the Netherlands",
    "turkiye": "Turkey", "viet nam": "Vietnam",
}


def _country_key(name: str) -> str:
    return re.sub(r"^the ", "", loose(name))


_COUNTRY_LOOKUP = {**{_country_key(c): c for c in CAPITALS},
                   **{_country_key(a): c for a, c in _COUNTRY_ALIASES.items()}}


def _resolve_capital(slots: dict[str, str]) -> tuple[str, str] | None:
    country = _COUNTRY_LOOKUP.get(_country_key(slots["country"]))
    if country is None:
        return None
    return _country_key(country).replace(" ", "-"), CAPITALS[country]


def capitals_family() -> TemplatedFamily:
    return TemplatedFamily("capitals", [QuestionKind(
        "capital", (
            "What is the capital of {country}?", "What's the capital city of {country}?",
            "Which city is the capital of {country}?", "Name the capital of {country}.",
            "Capital of {country}?", "Tell me the capital of {country}."),
        {"country": r"[a-z][a-z ]{0,60}"},
        lambda: [{"country": c} for c in CAPITALS], _resolve_capital)])


_ASKS_FOR_A_CAPITAL = re.compile(r"\bcapital(?: city)? of (?P<country>[^?.!,;]{1,60})", re.IGNORECASE)


def unknown_country(query: str) -> str | None:
    """The country a query asks the capital of, when the table does not have it; else None."""
    match = _ASKS_FOR_A_CAPITAL.search(query)
    if match is None:
        return None
    country = " ".join(match.group("country").split())
    return None if not country or _country_key(country) in _COUNTRY_LOOKUP else country
