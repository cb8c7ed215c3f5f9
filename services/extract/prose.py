"""Figures in prose: 'X was RMB1,234.5 million (US$170.0 million), compared to RMB1,100.0
million in the same period of 2024, and RMB1,200.0 million in the prior quarter.'

Each figure takes its subject from the clause before it (or keeps the sentence's subject when
that clause only links figures), its period from the phrase after it (or before it), and its
role from the words around it ('a decrease of', 'between ... and').
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import date

from schemas.money import Scale
from schemas.periods import Quarter
from schemas.registry import METRICS, Unit
from services.extract.amounts import Number, currency_code, parse_number, scale_of
from services.extract.document import DATE, ORDINAL, ORDINALS, date_of
from services.extract.model import (
    Figure,
    Kind,
    Origin,
    Provenance,
    Role,
    Target,
    Unplaced,
)
from services.extract.placing import Placement, Placer
from services.extract.template import Section, clean

SCALE_WORD = r"(?:thousand|million|billion)s?\b"
TOKEN = re.compile(
    rf"(?P<money>(?P<symbol>RMB|US\\?\$|HK\\?\$)\s?(?P<mnum>-?\d[\d,]*(?:\.\d+)?)"
    rf"(?:\s?(?P<mscale>{SCALE_WORD}))?)"
    r"|(?P<percent>(?P<pnum>-?\d+(?:\.\d+)?)%)"
    rf"|(?P<count>(?P<cnum>\d[\d,]*(?:\.\d+)?)\s(?P<cscale>{SCALE_WORD}))"
    r"|(?P<grouped>\b\d{1,3}(?:,\d{3})+(?![\d.,]\d))"
    r"|(?P<months>(?P<tnum>\d+(?:\.\d+)?)\smonths\b)"
    r"|(?P<bare>(?<![\d.,])\b(?!(?:19|20)\d\d\b)\d+(?= (?:[a-z]+ ){0,2}[a-z]+s\b))"
)
SENTENCE_END = re.compile(r"(?<=[.!?])[”\"]?\s+(?=[A-Z“\"*(])")
PERIOD_PHRASE = re.compile(
    r"(?:in|for|during) the same (?:period|quarter) (?:of|in|last) (?P<same>\d{4})"
    r"|(?P<prior>in the prior quarter|in the previous quarter|in the preceding quarter)"
    rf"|as (?:of|at) {DATE}"
    r"|(?P<ago>a year ago)"
    rf"|(?:in|for|during) the (?P<ordinal>{ORDINAL}) quarter(?: of (?P<qyear>\d{{4}}))?"
    r"|(?:in|for) (?:the )?(?:full |fiscal )+year (?:of )?(?P<fyear>\d{4})",
    re.I,
)
CHANGE_WORDS = re.compile(r"\b(?P<word>increase|decrease|growth|decline)d? (?:of|by)\s*$", re.I)
CONNECTOR_WORDS = frozenset(
    {
        *("compared", "to", "with", "and", "from", "versus", "vs", "or", "respectively"),
        *("a", "an", "of", "by", "between", "representing", "year-on-year", "year-over-year"),
        *("increase", "decrease", "growth", "decline"),
    }
)
NEGATIVE_CHANGES = frozenset({"decrease", "decline"})


@dataclass(frozen=True)
class Token:
    """A figure found in a sentence: its number, unit, currency and scale as printed."""

    start: int
    end: int
    text: str
    number: Number
    unit: Unit
    currency: str | None
    scale: Scale | None


@dataclass(frozen=True)
class Found:
    """A token after reading its context: subject, role and period."""

    token: Token
    subject: Placement | None
    role: Role
    period: str | None
    negative: bool = False


def tokens(sentence: str) -> list[Token]:
    return [token_of(match) for match in TOKEN.finditer(sentence)]


def token_of(match: re.Match[str]) -> Token:
    start, end, text = match.start(), match.end(), match.group(0)
    if match["money"]:
        currency = currency_code(match["symbol"])
        number = parse_number(match["mnum"])
        return Token(start, end, text, number, Unit.MONEY, currency, scale_of(match["mscale"]))
    if match["percent"]:
        return Token(start, end, text, parse_number(match["pnum"]), Unit.PERCENT, None, None)
    if match["months"]:
        return Token(start, end, text, parse_number(match["tnum"]), Unit.MONTHS, None, None)
    number = parse_number(match["cnum"] or match["grouped"] or match["bare"])
    return Token(start, end, text, number, Unit.COUNT, None, scale_of(match["cscale"]))


def sentences(text: str) -> Iterator[tuple[int, str]]:
    """Sentences of one line with their offsets; decimal points never end a sentence."""
    start = 0
    for match in SENTENCE_END.finditer(text):
        yield start, text[start : match.start()]
        start = match.end()
    yield start, text[start:]


@dataclass
class ProseReader:
    """Reads the prose lines of one document, section by section."""

    period: str
    placer: Placer

    def read_line(
        self, number: int, text: str, section: Section
    ) -> tuple[list[Figure], list[Unplaced]]:
        figures: list[Figure] = []
        unplaced: list[Unplaced] = []
        for offset, sentence in sentences(text):
            for found in self.read_sentence(sentence, section):
                token = replace_offsets(found.token, offset)
                outcome = self.figure(found, token, number, section)
                if isinstance(outcome, Figure):
                    figures.append(outcome)
                else:
                    unplaced.append(Unplaced(number, token.text, outcome))
        return figures, unplaced

    def read_sentence(self, sentence: str, section: Section) -> list[Found]:
        found: list[Found] = []
        previous_end = 0
        outlook = section is Section.OUTLOOK
        outlook_period = first_period(sentence, self.period) if outlook else None
        year_on_year = outlook and YEAR_ON_YEAR.search(sentence) is not None
        found_tokens = tokens(sentence)
        for index, token in enumerate(found_tokens):
            clause = clean(sentence[previous_end : token.start])
            after = sentence[token.end : next_start(found_tokens, index, len(sentence))]
            before = found[-1] if found else None
            read = self.read_token(token, clause, after, before, outlook_period)
            growth = growth_bound(token, clause, after, before) if year_on_year else None
            found.append(replace(read, role=growth[0], negative=growth[1]) if growth else read)
            previous_end = token.end
        return found

    def read_token(
        self,
        token: Token,
        clause: str,
        after: str,
        before: Found | None,
        outlook_period: str | None,
    ) -> Found:
        subject = self.placer.prose(clause)
        if subject is None and before is not None and is_connector(clause):
            subject = before.subject
        if is_convenience(token, clause, before) and before is not None:
            return Found(token, subject, Role.VALUE, before.period)
        role = role_of(token, clause, before)
        period = outlook_period or period_after(after, self.period)
        period = period or last_period(clause, self.period) or self.period
        return Found(token, subject, role, period, role is Role.CHANGE and is_decrease(clause))

    def figure(self, found: Found, token: Token, line: int, section: Section) -> Figure | str:
        """The figure a token stands for, or why it cannot be placed."""
        target = target_of(found, section)
        if isinstance(target, str):
            return target
        if (problem := unit_problem(found, token)) is not None:
            return problem
        assert found.subject is not None
        assert found.period is not None
        label = found.subject.label
        column = f"prose ({section.value})"
        return Figure(
            target=target,
            period=found.period,
            value=-token.number.value if found.negative else token.number.value,
            unit=token.unit,
            currency=token.currency,
            scale=token.scale,
            decimals=token.number.decimals,
            origin=Origin.PROSE,
            provenance=Provenance(line, token.start, token.end, token.text, column, label),
            role=found.role,
        )


def target_of(found: Found, section: Section) -> Target | str:
    """Outlook ranges become guidance; anything else keeps its subject. A string says why not."""
    if found.subject is None:
        return "no template label names this figure"
    target = found.subject.target
    guided = found.role not in (Role.VALUE, Role.CHANGE)
    if section is not Section.OUTLOOK:
        return f"a guided range for {target.label} outside the outlook" if guided else target
    if not guided or target.name not in METRICS:
        return f"outlook figure for {target.label} is not a guided range"
    return Target(Kind.GUIDANCE, target.name)


def replace_offsets(token: Token, offset: int) -> Token:
    return replace(token, start=token.start + offset, end=token.end + offset)


def next_start(found: list[Token], index: int, default: int) -> int:
    return found[index + 1].start if index + 1 < len(found) else default


def is_connector(clause: str) -> bool:
    """A clause that only links figures of one subject: ', compared to', ' and', ' from'."""
    words = re.sub(r"[(),;.]", " ", PERIOD_PHRASE.sub(" ", clause)).lower().split()
    return all(word in CONNECTOR_WORDS for word in words)


def is_convenience(token: Token, clause: str, before: Found | None) -> bool:
    """'(US$170.0 million)' right after an RMB figure restates it in another currency."""
    return (
        before is not None
        and token.unit is Unit.MONEY
        and before.token.unit is Unit.MONEY
        and token.currency != before.token.currency
        and clause.strip() == "("
    )


def role_of(token: Token, clause: str, before: Found | None) -> Role:
    percent = token.unit is Unit.PERCENT
    if percent and CHANGE_WORDS.search(clause):
        return Role.CHANGE
    if re.search(r"\bbetween\s*$", clause):
        return Role.YOY_LOW if percent else Role.LOW
    closes_range = before is not None and before.role in (Role.LOW, Role.YOY_LOW)
    if closes_range and clause.strip().lower() == "and":
        return Role.YOY_HIGH if percent else Role.HIGH
    return Role.VALUE


YEAR_ON_YEAR = re.compile(
    r"\byear[- ](?:over|on)[- ]year\b|\byoy\b"
    r"|\b(?:compared (?:to|with)|over|from) the same (?:period|quarter) (?:of|in|last)\b",
    re.I,
)
GROWTH_START = re.compile(
    r"\b(?P<verb>grow|growth|increase|rise|decline|decrease|drop|fall)(?:s|d|th)?"
    r"(?:\s+(?:of|by))?"
    r"(?:\s+(?P<least>at least|no less than|a minimum of|not less than)"
    r"|\s+(?P<most>up to|at most|no more than|a maximum of|not more than))?\s*$",
    re.I,
)
RANGE_LINK = frozenset({"to", "and", "-", "–"})
SHRINKING = frozenset({"decline", "decrease", "drop", "fall"})


def growth_bound(
    token: Token, clause: str, after: str, before: Found | None
) -> tuple[Role, bool] | None:
    """In an outlook sentence about year-on-year change, a percentage that bounds the growth:
    'to grow 10% to 15%' (a range), 'by at least 10%' (a low bound), 'by up to 15%' (a high
    bound). A decline is negative growth, so its first (smaller) figure is the high bound.
    Returns the role and whether the figure is a decline, or None for other percentages."""
    if token.unit is not Unit.PERCENT:
        return None
    if before is not None and before.role in GROWTH_ROLES and clause.strip() in RANGE_LINK:
        return (Role.YOY_HIGH if before.role is Role.YOY_LOW else Role.YOY_LOW), before.negative
    start = GROWTH_START.search(clause)
    if start is None:
        return None
    shrinking = start["verb"].lower() in SHRINKING
    opens_range = clean(after).strip() in RANGE_LINK
    if not (opens_range or start["least"] or start["most"]):
        return None  # a single growth figure is not a range: left as it was read
    at_least = bool(start["least"]) or (opens_range and not start["most"])
    return (Role.YOY_LOW if at_least != shrinking else Role.YOY_HIGH), shrinking


GROWTH_ROLES = frozenset({Role.YOY_LOW, Role.YOY_HIGH})


def is_decrease(clause: str) -> bool:
    match = CHANGE_WORDS.search(clause)
    return match is not None and match["word"].lower() in NEGATIVE_CHANGES


def unit_problem(found: Found, token: Token) -> str | None:
    assert found.subject is not None
    expected = Unit.PERCENT if found.role in (Role.CHANGE, Role.YOY_LOW, Role.YOY_HIGH) else None
    expected = expected or found.subject.unit
    if token.unit is not expected:
        return f"a {token.unit.value} figure where {found.subject.target.label} is {expected.value}"
    per_share = found.subject.target.kind is Kind.PER_SHARE
    if per_share and token.scale is not Scale.UNITS:
        return f"a per-share figure printed in {token.scale}"
    return None


def period_after(text: str, current: str) -> str | None:
    """The period named right after a figure ('in the same period of 2024')."""
    match = PERIOD_PHRASE.match(clean(text).lstrip(" ,)"))
    return period_of(match, current) if match else None


def last_period(text: str, current: str) -> str | None:
    matches = list(PERIOD_PHRASE.finditer(text))
    return period_of(matches[-1], current) if matches else None


def first_period(text: str, current: str) -> str | None:
    match = PERIOD_PHRASE.search(clean(text))
    return period_of(match, current) if match else None


def period_of(match: re.Match[str], current: str) -> str:
    quarter = Quarter.parse(current)
    if match["same"]:
        return str(Quarter(int(match["same"]), quarter.quarter))
    if match["prior"]:
        return str(quarter.previous())
    if match["ago"]:
        return str(quarter.same_quarter_last_year())
    if match["ordinal"]:
        year = int(match["qyear"]) if match["qyear"] else quarter.year
        return str(Quarter(year, ORDINALS[match["ordinal"].lower()]))
    if match["fyear"]:
        return f"FY{match['fyear']}"
    return day_period(date_of(match))


def day_period(day: date) -> str:
    """A quarter when the day ends one ('as of June 30, 2025' is 2025Q2), else the day."""
    quarter = Quarter.containing(day)
    return str(quarter) if quarter.end == day else day.isoformat()
