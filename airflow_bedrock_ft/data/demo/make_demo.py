"""Generate the demo fine-tuning dataset (country facts Q&A) deterministically.

Run from anywhere: ``python make_demo.py``. It rewrites, next to this file:

* ``train.jsonl`` / ``validation.jsonl`` — ``{"prompt", "completion"}`` records
  (e.g. ``meta.llama3-1-8b-instruct-v1:0``, Titan Text, Cohere);
* ``converse_train.jsonl`` / ``converse_validation.jsonl`` — the same records in the
  ``bedrock-conversation-2024`` format (e.g. ``amazon.nova-micro-v1:0:128k``, Llama 3.2).

Each fact (capital, continent, currency or main language of a country) is asked with four
phrasings. Three go to training; the fourth (rotating) is held out, and for two facts in three
it is the validation record, so the validation loss measures how well a model answers known
facts asked in a way it has not seen for that fact.
No randomness and no network: the output depends only on the tables below.
"""

from __future__ import annotations

import json
from pathlib import Path

# name used in sentences, capital, continent, currency, main language (None when a country
# has several official languages and no single answer would be fair).
COUNTRIES: tuple[tuple[str, str, str, str, str | None], ...] = (
    ("France", "Paris", "Europe", "the euro", "French"),
    ("Germany", "Berlin", "Europe", "the euro", "German"),
    ("Italy", "Rome", "Europe", "the euro", "Italian"),
    ("Spain", "Madrid", "Europe", "the euro", "Spanish"),
    ("Portugal", "Lisbon", "Europe", "the euro", "Portuguese"),
    ("the Netherlands", "Amsterdam", "Europe", "the euro", "Dutch"),
    ("Austria", "Vienna", "Europe", "the euro", "German"),
    ("Greece", "Athens", "Europe", "the euro", "Greek"),
    ("Croatia", "Zagreb", "Europe", "the euro", "Croatian"),
    ("Poland", "Warsaw", "Europe", "the Polish zloty", "Polish"),
    ("Sweden", "Stockholm", "Europe", "the Swedish krona", "Swedish"),
    ("Norway", "Oslo", "Europe", "the Norwegian krone", "Norwegian"),
    ("Denmark", "Copenhagen", "Europe", "the Danish krone", "Danish"),
    ("Iceland", "Reykjavik", "Europe", "the Icelandic krona", "Icelandic"),
    ("the United Kingdom", "London", "Europe", "the pound sterling", "English"),
    ("the Czech Republic", "Prague", "Europe", "the Czech koruna", "Czech"),
    ("Hungary", "Budapest", "Europe", "the forint", "Hungarian"),
    ("Romania", "Bucharest", "Europe", "the Romanian leu", "Romanian"),
    ("Serbia", "Belgrade", "Europe", "the Serbian dinar", "Serbian"),
    ("Ukraine", "Kyiv", "Europe", "the hryvnia", "Ukrainian"),
    ("Switzerland", "Bern", "Europe", "the Swiss franc", None),
    ("Japan", "Tokyo", "Asia", "the yen", "Japanese"),
    ("China", "Beijing", "Asia", "the renminbi", "Mandarin Chinese"),
    ("South Korea", "Seoul", "Asia", "the South Korean won", "Korean"),
    ("Thailand", "Bangkok", "Asia", "the baht", "Thai"),
    ("Vietnam", "Hanoi", "Asia", "the dong", "Vietnamese"),
    ("Malaysia", "Kuala Lumpur", "Asia", "the ringgit", "Malay"),
    ("Nepal", "Kathmandu", "Asia", "the Nepalese rupee", "Nepali"),
    ("Bangladesh", "Dhaka", "Asia", "the taka", "Bengali"),
    ("Mongolia", "Ulaanbaatar", "Asia", "the tugrik", "Mongolian"),
    ("Saudi Arabia", "Riyadh", "Asia", "the Saudi riyal", "Arabic"),
    ("Iran", "Tehran", "Asia", "the Iranian rial", "Persian"),
    ("India", "New Delhi", "Asia", "the Indian rupee", None),
    ("Pakistan", "Islamabad", "Asia", "the Pakistani rupee", None),
    ("the Philippines", "Manila", "Asia", "the Philippine peso", None),
    ("Egypt", "Cairo", "Africa", "the Egyptian pound", "Arabic"),
    ("Nigeria", "Abuja", "Africa", "the naira", "English"),
    ("Ghana", "Accra", "Africa", "the Ghanaian cedi", "English"),
    ("Kenya", "Nairobi", "Africa", "the Kenyan shilling", None),
    ("Morocco", "Rabat", "Africa", "the Moroccan dirham", None),
    ("Ethiopia", "Addis Ababa", "Africa", "the birr", None),
    ("Mexico", "Mexico City", "North America", "the Mexican peso", "Spanish"),
    ("Cuba", "Havana", "North America", "the Cuban peso", "Spanish"),
    ("Jamaica", "Kingston", "North America", "the Jamaican dollar", "English"),
    ("Canada", "Ottawa", "North America", "the Canadian dollar", None),
    ("the United States", "Washington, D.C.", "North America", "the US dollar", None),
    ("Brazil", "Brasilia", "South America", "the Brazilian real", "Portuguese"),
    ("Argentina", "Buenos Aires", "South America", "the Argentine peso", "Spanish"),
    ("Chile", "Santiago", "South America", "the Chilean peso", "Spanish"),
    ("Peru", "Lima", "South America", "the sol", "Spanish"),
    ("Colombia", "Bogota", "South America", "the Colombian peso", "Spanish"),
    ("Uruguay", "Montevideo", "South America", "the Uruguayan peso", "Spanish"),
    ("Venezuela", "Caracas", "South America", "the bolivar", "Spanish"),
    ("Australia", "Canberra", "Oceania", "the Australian dollar", "English"),
    ("New Zealand", "Wellington", "Oceania", "the New Zealand dollar", None),
)

QUESTIONS: dict[str, tuple[str, ...]] = {
    "capital": (
        "What is the capital of {c}?",
        "Which city is the capital of {c}?",
        "Name the capital city of {c}.",
        "What city serves as the capital of {c}?",
    ),
    "continent": (
        "On which continent is {c}?",
        "Which continent is {c} located in?",
        "Name the continent where {c} lies.",
        "In what continent can you find {c}?",
    ),
    "currency": (
        "What is the currency of {c}?",
        "Which currency is used in {c}?",
        "Name the money used in {c}.",
        "What do people in {c} pay with?",
    ),
    "language": (
        "What language is mainly spoken in {c}?",
        "Which language do most people in {c} speak?",
        "Name the main language of {c}.",
        "What is the main language of {c}?",
    ),
}

ANSWERS: dict[str, str] = {
    "capital": "The capital of {c} is {v}.",
    "continent": "{C} is in {v}.",
    "currency": "The currency of {c} is {v}.",
    "language": "The main language of {c} is {v}.",
}

SYSTEM = "Answer in one sentence."
HERE = Path(__file__).resolve().parent


def facts() -> list[tuple[str, str, str]]:
    """(attribute, country, value) for every fact, in table order."""
    out = []
    for name, capital, continent, currency, language in COUNTRIES:
        values = {"capital": capital, "continent": continent, "currency": currency, "language": language}
        for attr in QUESTIONS:
            value = values[attr]
            if value is not None:
                out.append((attr, name, value))
    return out


def records() -> tuple[list[dict[str, str]], list[dict[str, str]]]:
    """The (train, validation) prompt/completion records."""
    train: list[dict[str, str]] = []
    validation: list[dict[str, str]] = []
    for i, (attr, country, value) in enumerate(facts()):
        held_out = i % len(QUESTIONS[attr])
        answer = ANSWERS[attr].format(c=country, C=country[0].upper() + country[1:], v=value)
        for j, question in enumerate(QUESTIONS[attr]):
            record = {"prompt": question.format(c=country), "completion": answer}
            if j != held_out:
                train.append(record)
            elif i % 3 != 2:
                # Two facts in three keep their held-out phrasing as validation; the files
                # stay small while every question kind is still validated.
                validation.append(record)
    # Interleave facts so that a prefix of the file covers every kind of question.
    train.sort(key=lambda r: (_stable_hash(r["prompt"]), r["prompt"]))
    validation.sort(key=lambda r: (_stable_hash(r["prompt"]), r["prompt"]))
    return train, validation


def _stable_hash(text: str) -> int:
    h = 2166136261
    for byte in text.encode("utf-8"):
        h = ((h ^ byte) * 16777619) & 0xFFFFFFFF
    return h


def to_converse(record: dict[str, str]) -> dict[str, object]:
    """The same record in the ``bedrock-conversation-2024`` format, with a system prompt."""
    return {
        "schemaVersion": "bedrock-conversation-2024",
        "system": [{"text": SYSTEM}],
        "messages": [
            {"role": "user", "content": [{"text": record["prompt"]}]},
            {"role": "assistant", "content": [{"text": record["completion"]}]},
        ],
    }


def _write(path: Path, rows: list[dict[str, object]] | list[dict[str, str]]) -> None:
    with path.open("w", encoding="utf-8", newline="\n") as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False, separators=(",", ":")) + "\n")


def main() -> None:
    """Write the four JSONL files next to this script."""
    train, validation = records()
    _write(HERE / "train.jsonl", train)
    _write(HERE / "validation.jsonl", validation)
    _write(HERE / "converse_train.jsonl", [to_converse(r) for r in train])
    _write(HERE / "converse_validation.jsonl", [to_converse(r) for r in validation])
    print(f"{len(train)} training and {len(validation)} validation records")


if __name__ == "__main__":
    main()
