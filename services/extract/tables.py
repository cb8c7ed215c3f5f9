"""Tab-separated statement tables: title, unit line, column headers, rows with cell offsets."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date

from schemas.money import Scale
from schemas.periods import Quarter
from services.extract.amounts import (
    CURRENCY_CODES,
    CURRENCY_NAMES,
    SCALE_WORDS,
    currency_code,
)
from services.extract.document import MONTH_NAMES
from services.extract.model import AnnouncementError

UNIT_LINE = re.compile(r"^\(\s*amounts in\b", re.IGNORECASE)
UNIT_BODY = re.compile(r"^\(\s*amounts in\s+(?:(?P<scale>[a-z]+) of\s+)?(?P<names>.*)$", re.I)
PERIOD_PHRASE = re.compile(
    r"(?P<length>three|twelve) months ended|(?P<year>year) ended", re.IGNORECASE
)
COLUMN_END = re.compile(r"ended\s+(?P<month>[A-Z][a-z]+)\s+(?P<day>\d{1,2})", re.IGNORECASE)
YEAR = re.compile(r"^\d{4}$")
HEADER_SEARCH_LINES = 8


@dataclass(frozen=True)
class Cell:
    line: int
    start: int
    text: str

    @property
    def end(self) -> int:
        return self.start + len(self.text)


@dataclass(frozen=True)
class Column:
    period: str
    currency: str
    header: str


@dataclass(frozen=True)
class TableRow:
    line: int
    label: Cell
    cells: tuple[Cell, ...]


@dataclass(frozen=True)
class Block:
    """A table as found: title, unit line, header lines and rows, not yet interpreted."""

    title: str
    title_line: int
    unit_line: int
    headers: tuple[tuple[int, str], ...]
    rows: tuple[TableRow, ...]

    @property
    def last_line(self) -> int:
        return self.rows[-1].line if self.rows else self.unit_line


@dataclass(frozen=True)
class Table:
    block: Block
    scale: Scale
    columns: tuple[Column, ...]


def split_cells(text: str, line: int) -> list[Cell]:
    """Tab-separated cells, stripped, each with its offset in the line."""
    cells, start = [], 0
    for part in text.split("\t"):
        stripped = part.strip()
        offset = start + (part.find(stripped) if stripped else 0)
        cells.append(Cell(line, offset, stripped))
        start += len(part) + 1
    return cells


def find_blocks(lines: Sequence[str]) -> list[Block]:
    """Every table introduced by a '(Amounts in ...' unit line."""
    return [
        read_block(lines, index)
        for index, text in enumerate(lines)
        if UNIT_LINE.match(text.strip())
    ]


def read_block(lines: Sequence[str], unit_index: int) -> Block:
    title_index = previous_text_line(lines, unit_index)
    index, headers = unit_index + 1, []
    while index < len(lines) and not is_data_row(lines[index]):
        if index - unit_index > HEADER_SEARCH_LINES:
            raise AnnouncementError(
                f"line {unit_index + 1}: a unit line with no table rows after it"
            )
        if lines[index].strip():
            headers.append((index + 1, lines[index]))
        index += 1
    rows = []
    while index < len(lines) and "\t" in lines[index] and lines[index].strip():
        cells = split_cells(lines[index], index + 1)
        rows.append(TableRow(index + 1, cells[0], tuple(cells[1:])))
        index += 1
    title = lines[title_index].strip() if title_index >= 0 else ""
    return Block(title, title_index + 1, unit_index + 1, tuple(headers), tuple(rows))


def previous_text_line(lines: Sequence[str], index: int) -> int:
    index -= 1
    while index >= 0 and not lines[index].strip():
        index -= 1
    return index


def is_data_row(text: str) -> bool:
    if "\t" not in text:
        return False
    cells = [cell.text for cell in split_cells(text, 0)]
    return bool(cells[0]) and PERIOD_PHRASE.search(cells[0]) is None


def interpret(block: Block, lines: Sequence[str]) -> Table:
    """Read the unit line and the column headers of a block the template wants."""
    scale, currencies = read_unit(block.unit_line, lines[block.unit_line - 1])
    return Table(block, scale, read_columns(block, currencies))


def read_unit(line: int, text: str) -> tuple[Scale, frozenset[str]]:
    """'(Amounts in thousands of Renminbi ... and U.S. dollars ...' -> thousands, CNY, USD."""
    match = UNIT_BODY.match(text.strip())
    scale_word = (match["scale"] or "").lower().removesuffix("s") if match else "?"
    currencies = named_currencies(match["names"]) if match else frozenset()
    if (scale_word and scale_word not in SCALE_WORDS) or not currencies:
        raise AnnouncementError(
            f"line {line}: unit line {text.strip()!r} not understood; expected "
            "'(Amounts in <thousands|millions|billions> of <currency names> ...)'"
        )
    return SCALE_WORDS[scale_word] if scale_word else Scale.UNITS, currencies


def named_currencies(text: str) -> frozenset[str]:
    lowered = text.lower()
    named = {code for name, code in CURRENCY_NAMES.items() if name in lowered}
    quoted = set(re.findall(r"[“\"]([A-Z]{3}|US\$|HK\$)[”\"]", text))
    return frozenset(named | {CURRENCY_CODES[code] for code in quoted})


def read_columns(block: Block, currencies: frozenset[str]) -> tuple[Column, ...]:
    header_cells = [split_cells(text, line) for line, text in block.headers]
    phrases = [
        (index if len(cells) > 1 else 0, cell)
        for cells in header_cells
        for index, cell in enumerate(cells)
        if PERIOD_PHRASE.search(cell.text)
    ]
    years = header_row(header_cells, lambda text: YEAR.match(text) is not None)
    symbols = header_row(header_cells, lambda text: text.upper() in CURRENCY_CODES)
    if not phrases or not years or len(symbols) != len(years):
        raise AnnouncementError(
            f"table {block.title!r} at line {block.title_line}: column headers not understood; "
            "expected a period line ('Three months ended June 30,'), a year row and a "
            "currency row"
        )
    return tuple(
        column(block, phrases, position, year, symbol, currencies)
        for (position, year), (_, symbol) in zip(years, symbols, strict=True)
    )


def header_row(
    header_cells: list[list[Cell]], accepts: Callable[[str], bool]
) -> list[tuple[int, Cell]]:
    for cells in header_cells:
        values = [(index, cell) for index, cell in enumerate(cells) if index and cell.text]
        if values and all(accepts(cell.text) for _, cell in values):
            return values
    return []


def column(
    block: Block,
    phrases: list[tuple[int, Cell]],
    position: int,
    year: Cell,
    symbol: Cell,
    currencies: frozenset[str],
) -> Column:
    phrase = [cell for index, cell in phrases if index <= position][-1]
    currency = currency_code(symbol.text)
    if currency not in currencies:
        raise AnnouncementError(
            f"line {symbol.line}: column currency {symbol.text!r} is not named in the unit line"
        )
    period = column_period(phrase, int(year.text))
    return Column(period, currency, f"{phrase.text} {year.text} {symbol.text}")


def column_period(phrase: Cell, year: int) -> str:
    kind = PERIOD_PHRASE.search(phrase.text)
    end = COLUMN_END.search(phrase.text)
    if kind is None or end is None or end["month"].capitalize() not in MONTH_NAMES:
        raise AnnouncementError(
            f"line {phrase.line}: column header {phrase.text!r} has no end date"
        )
    ended = date(year, MONTH_NAMES.index(end["month"].capitalize()) + 1, int(end["day"]))
    quarter = Quarter.containing(ended)
    if kind["length"] and kind["length"].lower() == "three" and quarter.end == ended:
        return str(quarter)
    if (kind["year"] or kind["length"]) and (ended.month, ended.day) == (12, 31):
        return f"FY{year}"
    raise AnnouncementError(
        f"line {phrase.line}: column {phrase.text!r} {year} is neither a calendar quarter "
        "nor a calendar fiscal year"
    )
