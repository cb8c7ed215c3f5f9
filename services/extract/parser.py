"""`parse_announcement`: an announcement's text to figures with provenance. Pure: no I/O."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence

from schemas.money import Scale
from schemas.registry import Unit
from services.extract.amounts import parse_cell
from services.extract.document import (
    read_company,
    read_exchange_rate,
    read_period,
    read_published_at,
)
from services.extract.model import (
    AnnouncementError,
    Extraction,
    Figure,
    Kind,
    Origin,
    Provenance,
    Unplaced,
)
from services.extract.placing import Placement, Placer
from services.extract.prose import ProseReader
from services.extract.tables import (
    Block,
    Cell,
    Column,
    Table,
    TableRow,
    find_blocks,
    interpret,
)
from services.extract.template import (
    OPERATIONS_TITLE,
    READ_SECTIONS,
    READ_TABLE_TITLES,
    Section,
    section_of,
)

TITLE = re.compile(r"\bannounces\b.*\bresults\b", re.I)
Read = tuple[list[Figure], list[Unplaced]]


def parse_announcement(text: str, *, company: str | None = None) -> Extraction:
    """Every figure the template places, with provenance, and what it could not place.

    Raises AnnouncementError when the document is not a readable results announcement.
    """
    lines = text.splitlines()
    period = read_period(lines)
    tables, skipped = read_tables(lines)
    operations = tables[0]
    currency = statement_currency(operations, period)
    table_figures, table_unplaced = read_table_figures(tables)
    prose_figures, prose_unplaced = read_prose(lines, period, tables)
    return Extraction(
        company=read_company(lines, company),
        period=period,
        published_at=read_published_at(lines),
        title=read_title(lines),
        digest=hashlib.sha256("\n".join(lines).encode("utf-8")).hexdigest(),
        currency=currency,
        scale=operations.scale,
        figures=tuple(table_figures + prose_figures),
        unplaced=tuple(table_unplaced + prose_unplaced + skipped),
        exchange_rate=read_exchange_rate(lines),
    )


def read_title(lines: Sequence[str]) -> str:
    return next((line.strip() for line in lines if TITLE.search(line)), "results announcement")


def read_tables(lines: Sequence[str]) -> tuple[list[Table], list[Unplaced]]:
    """The statement of operations first, then other tables the template reads."""
    blocks = find_blocks(lines)
    wanted = [block for block in blocks if is_read(block)]
    if not any(OPERATIONS_TITLE.search(block.title) for block in wanted):
        raise AnnouncementError(missing_operations(lines))
    wanted.sort(key=lambda block: OPERATIONS_TITLE.search(block.title) is None)
    skipped = [
        Unplaced(block.title_line, block.title, "table not read: outside the results contract")
        for block in blocks
        if not is_read(block)
    ]
    return [interpret(block, lines) for block in wanted], skipped


def is_read(block: Block) -> bool:
    return any(title.search(block.title) for title in READ_TABLE_TITLES)


def missing_operations(lines: Sequence[str]) -> str:
    titled = [n for n, line in enumerate(lines, 1) if OPERATIONS_TITLE.search(line)]
    if titled:
        return (
            f"line {titled[-1]}: the statement of operations has no unit line such as "
            "'(Amounts in thousands of Renminbi ...' followed by tab-separated rows"
        )
    return (
        "no statement of operations found; expected a table titled '... Statements of Operations'"
    )


def statement_currency(operations: Table, period: str) -> str:
    """The currency of the statement's first column; the current period must be printed in it."""
    currency = operations.columns[0].currency
    if not any(c.period == period and c.currency == currency for c in operations.columns):
        raise AnnouncementError(
            f"the statement of operations has no {currency} column for {period}; "
            f"its columns are {', '.join(c.header for c in operations.columns)}"
        )
    return currency


def read_table_figures(tables: Sequence[Table]) -> Read:
    figures: list[Figure] = []
    unplaced: list[Unplaced] = []
    for table in tables:
        placer = Placer()
        for row in table.block.rows:
            found, missed = read_row(table, row, placer.table_row(row.label.text))
            figures += found
            unplaced += missed
    return figures, unplaced


def read_row(table: Table, row: TableRow, placement: Placement | None) -> Read:
    """The row's figures, one per filled cell; an unknown row with figures is reported."""
    pairs = zip(table.columns, row.cells, strict=False)
    filled = [(column, cell) for column, cell in pairs if cell.text]
    extra = [cell for cell in row.cells[len(table.columns) :] if cell.text]
    if placement is None and (filled or extra):
        reason = f"row label not in the template of {table.block.title!r}"
        return [], [Unplaced(row.line, row.label.text, reason)]
    if placement is None or extra:
        missed = [Unplaced(row.line, row.label.text, "more figures than column headers")]
        return [], missed if extra else []
    outcomes = [cell_figure(table, column, cell, placement) for column, cell in filled]
    return (
        [o for o in outcomes if isinstance(o, Figure)],
        [o for o in outcomes if isinstance(o, Unplaced)],
    )


def cell_figure(
    table: Table, column: Column, cell: Cell, placement: Placement
) -> Figure | Unplaced:
    try:
        number = parse_cell(cell.text)
    except ValueError as error:
        return Unplaced(cell.line, cell.text, str(error))
    assert number is not None
    if number.percent != (placement.unit is Unit.PERCENT):
        return Unplaced(cell.line, cell.text, f"not a {placement.unit.value} figure")
    return Figure(
        target=placement.target,
        period=column.period,
        value=number.value * placement.sign,
        unit=placement.unit,
        currency=column.currency if placement.unit is Unit.MONEY else None,
        scale=cell_scale(table, placement),
        decimals=number.decimals,
        origin=Origin.TABLE,
        provenance=Provenance(
            cell.line, cell.start, cell.end, cell.text, column.header, placement.label
        ),
    )


def cell_scale(table: Table, placement: Placement) -> Scale | None:
    """The unit line's scale for amounts; per-share figures and counts are in units."""
    if placement.unit is Unit.PERCENT:
        return None
    if placement.unit is Unit.MONEY and placement.target.kind is not Kind.PER_SHARE:
        return table.scale
    return Scale.UNITS


def read_prose(lines: Sequence[str], period: str, tables: Sequence[Table]) -> Read:
    in_tables = {n for t in tables for n in range(t.block.title_line, t.block.last_line + 1)}
    reader = ProseReader(period, Placer())
    section = Section.OTHER
    figures: list[Figure] = []
    unplaced: list[Unplaced] = []
    for number, text in enumerate(lines, start=1):
        if number in in_tables or not text.strip():
            continue
        if (heading := section_of(text)) is not None:
            section, reader.placer = heading, Placer()
            continue
        if section in READ_SECTIONS:
            found, missed = reader.read_line(number, text, section)
            figures += found
            unplaced += missed
    return figures, unplaced
