"""Variants of the seed announcement, built by rewriting its text consistently.

Each builder changes the document the way another quarter's filing would differ, keeping the
printed figures consistent with each other (so a correct parser finds no discrepancy).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from decimal import ROUND_HALF_UP, Decimal

RATE = Decimal("7.2203")
BILLION_IN_THOUSANDS = 1_000_000
AMBIGUOUS = "<ambiguous>"
OUTLOOK = "\nBusiness Outlook\n"
READ_TABLES = ("Statements of Operations", "Reconciliations of GAAP and Non-GAAP")


def printed(value: Decimal, decimals: int) -> str:
    """As a statement prints it: thousands separators, parentheses for negatives."""
    text = f"{abs(value):,.{decimals}f}"
    return f"({text})" if value < 0 else text


def number(cell: str) -> Decimal:
    negative = cell.startswith("(")
    value = Decimal(cell.strip("()").replace(",", ""))
    return -value if negative else value


def half_up(value: Decimal, decimals: int) -> Decimal:
    return value.quantize(Decimal(1).scaleb(-decimals), rounding=ROUND_HALF_UP)


def prose_millions(thousands: Decimal) -> str:
    """'4,153.2' for 4,153,183 thousand; '-2.2' for -2,236."""
    return f"{half_up(thousands / 1000, 1):,.1f}"


def read_table_lines(lines: list[str]) -> list[int]:
    """Indexes of the data rows of the tables the parser reads."""
    rows, inside = [], False
    for index, line in enumerate(lines):
        if line.startswith("Unaudited") and any(title in line for title in READ_TABLES):
            inside = True
        elif inside and "\t" in line and line.split("\t")[0].strip():
            rows.append(index)
        elif inside and not line.strip() and rows and index - rows[-1] == 1:
            inside = False
    return rows


def rewrite_rows(text: str, rewrite: Callable[[list[str]], list[str]]) -> str:
    lines = text.split("\n")
    for index in read_table_lines(lines):
        lines[index] = "\t".join(rewrite(lines[index].split("\t")))
    return "\n".join(lines)


def row_kind(cells: list[str]) -> str:
    values = [cell for cell in cells[1:] if cell.strip()]
    if not values or values == ["-", "-", "-"]:
        return "empty"
    if any("%" in cell for cell in values):
        return "ratio"
    if any("." in cell for cell in values):
        return "per_share"
    if len(values) == 3 and values[1] == values[2]:
        return "count"
    return "money"


def scaled(text: str, factor: int) -> tuple[str, dict[str, str]]:
    """Every amount of the statement of operations and reconciliation times `factor`, with the
    convenience column recomputed at the stated rate and the prose restated to match.
    Returns the text and the prose replacements made."""
    replacements: dict[str, str] = {}

    def rewrite(cells: list[str]) -> list[str]:
        kind = row_kind(cells)
        if kind not in ("money", "per_share"):
            return cells
        decimals = 2 if kind == "per_share" else 0
        old = [number(cell) for cell in cells[1:]]
        new = [value * factor for value in old[:2]]
        new.append(half_up(new[1] / RATE, decimals))
        for before, after, symbol in zip(old, new, ("RMB", "RMB", r"US\$"), strict=True):
            remember(replacements, symbol, before, after, kind)
        return [cells[0], *(printed(value, decimals) for value in new)]

    return restate_prose(rewrite_rows(text, rewrite), replacements), replacements


def remember(
    replacements: dict[str, str], symbol: str, before: Decimal, after: Decimal, kind: str
) -> None:
    """The prose spellings of a figure before and after; a spelling two figures share
    (two rows that both round to 'RMB1.53 billion') is marked ambiguous and left alone."""
    pairs = [(f"{symbol}{before:.2f}", f"{symbol}{after:.2f}")]
    if kind != "per_share":
        old, new = prose_millions(before), prose_millions(after)
        pairs = [(f"{symbol}{old} million", f"{symbol}{new} million")]
        if abs(before) >= BILLION_IN_THOUSANDS / 2:
            old, new = (f"{half_up(v / BILLION_IN_THOUSANDS, 2):.2f}" for v in (before, after))
            pairs.append((f"{symbol}{old} billion", f"{symbol}{new} billion"))
    for old, new in pairs:
        if replacements.setdefault(old, new) != new:
            replacements[old] = AMBIGUOUS


def restate_prose(text: str, replacements: dict[str, str]) -> str:
    """One pass over the results prose (never the outlook or the tables), so a new figure is
    never replaced again."""
    body, rest = text.split(OUTLOOK, 1)
    keys = sorted((k for k, v in replacements.items() if v != AMBIGUOUS), key=len, reverse=True)
    pattern = re.compile("(" + "|".join(re.escape(key) for key in keys) + r")(?![\d,])")
    return pattern.sub(lambda match: replacements[match.group(1)], body) + OUTLOOK + rest


def in_millions(text: str) -> str:
    """The same statements printed in millions: unit line changed, amounts divided by 1,000
    and rounded half up to one decimal; per-share figures, counts and ratios unchanged."""

    def rewrite(cells: list[str]) -> list[str]:
        if row_kind(cells) != "money":
            return cells
        values = [number(cell) if cell.strip() != "-" else None for cell in cells[1:]]
        return [cells[0], *("-" if v is None else printed(half_up(v / 1000, 1), 1) for v in values)]

    text = rewrite_rows(text, rewrite)
    return text.replace("(Amounts in thousands of Renminbi", "(Amounts in millions of Renminbi")


NEXT_QUARTER = (
    ("second quarter of 2024", "third quarter of 2024"),
    ("first quarter ended March 31, 2024", "second quarter ended June 30, 2024"),
    ("FIRST QUARTER", "SECOND QUARTER"),
    ("First Quarter", "Second Quarter"),
    ("first quarter", "second quarter"),
    ("Q1 2024", "Q2 2024"),
    ("Three months ended March 31,", "Three months ended June 30,"),
    ("March 31, 2024", "June 30, 2024"),
    ("March 31, 2023", "June 30, 2023"),
    ("May 20, 2024", "August 20, 2024"),
    ("May 19, 2024", "August 19, 2024"),
)


def next_quarter(text: str) -> str:
    """The same figures, dated as the second quarter's announcement."""
    for old, new in NEXT_QUARTER:
        assert old in text, old
        text = text.replace(old, new)
    return text


def with_cell(text: str, label: str, column: int, new: str) -> str:
    """One table cell changed, nothing else: the statement of operations' row `label`."""
    lines = text.split("\n")
    index = next(i for i in read_table_lines(lines) if lines[i].split("\t")[0] == label)
    cells = lines[index].split("\t")
    cells[column] = new
    lines[index] = "\t".join(cells)
    return "\n".join(lines)


def with_row_after(text: str, label: str, row: str) -> str:
    lines = text.split("\n")
    index = next(i for i in read_table_lines(lines) if lines[i].split("\t")[0] == label)
    lines.insert(index + 1, row)
    return "\n".join(lines)


def without_tables(text: str) -> str:
    return text.split("Unaudited Condensed Consolidated Balance Sheets", 1)[0]
