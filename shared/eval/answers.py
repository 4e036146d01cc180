"""Final-answer text: number normalisation, answer extraction and exact match (GSM8K format).

Pure text, no model: the benchmark readers (``formats``) and the generation evaluators
(``generation``) both use it. The GSM8K label is the number after '####'; a prediction's answer is
the number after its last '####' if it wrote one, else the last number in the text. Numbers are
normalised (commas, '$', trailing '.', '.0' removed) before exact match.
"""
from __future__ import annotations

import re

_NUMBER = re.compile(r"-?\$?\d[\d,]*(?:\.\d+)?|-?\$?\.\d+")


def normalize_number(text: str | None) -> str | None:
    """The first number in `text` as a canonical string ('1,234.50' -> '1234.5', '$7' -> '7', '3.0' -> '3')."""
    if text is None:
        return None
    m = _NUMBER.search(text)
    if m is None:
        return None
    s = m.group(0).replace(",", "").replace("$", "")
    if s.startswith("-."):
        s = "-0" + s[1:]
    elif s.startswith("."):
        s = "0" + s
    if "." in s:
        s = s.rstrip("0").rstrip(".")
    if s in ("-0", ""):
        s = "0"
    return s


def extract_answer(text: str) -> str | None:
    """The predicted final number: after the last '####' if present, else the last number in the text."""
    if "####" in text:
        found = normalize_number(text.rsplit("####", 1)[1])
        if found is not None:
            return found
    numbers = _NUMBER.findall(text)
    return normalize_number(numbers[-1]) if numbers else None


def exact_match(prediction: str | None, gold: str | None) -> bool:
    """Both present and the same number after normalize_number."""
    return prediction is not None and gold is not None and normalize_number(prediction) == normalize_number(gold)
