"""The results-announcement template: which printed labels mean which contract names.

Table labels are matched whole (lower case, footnote marks removed); prose labels are searched
in the clause before a figure. Lines under a subtotal ("Credit driven services") are only
recognised while that subtotal is open, which is how the two "Other services fees" lines get
their parents.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import StrEnum

from schemas.registry import Unit
from services.extract.model import Kind, Target

FOOTNOTE_MARK = re.compile(r"\^\{\*?\d+\}")


class Section(StrEnum):
    OTHER = "other"
    BUSINESS_HIGHLIGHTS = "business highlights"
    FINANCIAL_HIGHLIGHTS = "financial highlights"
    FINANCIAL_RESULTS = "financial results"
    OUTLOOK = "business outlook"


READ_SECTIONS = frozenset(Section) - {Section.OTHER}
SECTION_HEADINGS = (
    (Section.BUSINESS_HIGHLIGHTS, re.compile(r"business highlights$", re.I)),
    (Section.FINANCIAL_HIGHLIGHTS, re.compile(r"financial highlights$", re.I)),
    (
        Section.FINANCIAL_RESULTS,
        re.compile(
            r"^(first|second|third|fourth) quarter( and (full|fiscal) year)? \d{4} "
            r"(unaudited )?financial results$",
            re.I,
        ),
    ),
    (Section.OUTLOOK, re.compile(r"^business outlook$", re.I)),
)

OPERATIONS_TITLE = re.compile(r"statements? of operations", re.I)
RECONCILIATION_TITLE = re.compile(r"reconciliations? of gaap and non-gaap", re.I)
READ_TABLE_TITLES = (OPERATIONS_TITLE, RECONCILIATION_TITLE)

CREDIT = "credit_driven_services"
PLATFORM = "platform_services"


@dataclass(frozen=True)
class RowSpec:
    """One contract name with the table label and prose phrase that print it."""

    target: Target
    unit: Unit
    table: re.Pattern[str] | None
    prose: re.Pattern[str] | None
    table_sign: int = 1
    opens: bool = False


@dataclass(frozen=True)
class ContextSpec:
    """A header row ('Net income per ADS ...') whose 'Basic' and 'Diluted' rows follow."""

    pattern: re.Pattern[str]
    kind: Kind
    prefix: str
    unit: Unit = field(default=Unit.MONEY)


def spec(
    kind: Kind,
    name: str,
    table: str | None,
    prose: str | None = None,
    *,
    parent: str | None = None,
    unit: Unit = Unit.MONEY,
    table_sign: int = 1,
    opens: bool = False,
) -> RowSpec:
    return RowSpec(
        Target(kind, name, parent),
        unit,
        re.compile(table) if table else None,
        re.compile(prose, re.I) if prose else None,
        table_sign,
        opens,
    )


def same(
    kind: Kind, name: str, label: str, *, parent: str | None = None, unit: Unit = Unit.MONEY
) -> RowSpec:
    """A name printed with the same words in the table and in the prose."""
    return spec(kind, name, label, label, parent=parent, unit=unit)


R, C, OL, H = Kind.REVENUE_LINE, Kind.COST_LINE, Kind.OTHER_LINE, Kind.HEADLINE
PS, SC, RT, M = Kind.PER_SHARE, Kind.SHARE_COUNT, Kind.RATIO, Kind.METRIC
ATTRIBUTABLE_TABLE = r"attributable to (?:ordinary )?shareholders of .+"
ATTRIBUTABLE_PROSE = r"attribut(?:ed|able) to the company"

STATEMENT_ROWS: tuple[RowSpec, ...] = (
    spec(
        R, CREDIT, r"credit driven services", r"net revenue from credit driven services", opens=True
    ),
    same(
        R,
        "loan_facilitation_and_servicing_fees_capital_heavy",
        r"loan facilitation and servicing fees\s*-\s*capital heavy",
        parent=CREDIT,
    ),
    same(R, "financing_income", r"financing income", parent=CREDIT),
    same(
        R,
        "revenue_from_releasing_of_guarantee_liabilities",
        r"revenue from releasing of guarantee liabilities",
        parent=CREDIT,
    ),
    same(R, "other_services_fees", r"other services fees", parent=CREDIT),
    spec(R, PLATFORM, r"platform services", r"net revenue from platform services", opens=True),
    same(
        R,
        "loan_facilitation_and_servicing_fees_capital_light",
        r"loan facilitation and servicing fees\s*-\s*capital light",
        parent=PLATFORM,
    ),
    same(R, "referral_services_fees", r"referral services fees", parent=PLATFORM),
    same(R, "other_services_fees", r"other services fees", parent=PLATFORM),
    same(H, "total_net_revenue", r"total net revenues?"),
    spec(
        C,
        "facilitation_origination_and_servicing",
        r"facilitation, origination and servicing",
        r"facilitation, origination and servicing expenses",
    ),
    same(C, "funding_costs", r"funding costs"),
    spec(C, "sales_and_marketing", r"sales and marketing", r"sales and marketing expenses"),
    spec(
        C,
        "general_and_administrative",
        r"general and administrative",
        r"general and administrative expenses",
    ),
    same(C, "provision_for_loans_receivable", r"provision for loans receivable"),
    same(
        C, "provision_for_financial_assets_receivable", r"provision for financial assets receivable"
    ),
    same(
        C,
        "provision_for_accounts_receivable_and_contract_assets",
        r"provision for accounts receivable and contract assets",
    ),
    same(C, "provision_for_contingent_liabilities", r"provision for contingent liabilit(?:y|ies)"),
    same(H, "total_operating_costs", r"total operating costs and expenses"),
    same(H, "income_from_operations", r"income from operations?"),
    same(OL, "interest_income_net", r"interest income, net"),
    same(
        OL, "foreign_exchange_gain", r"foreign exchange (?:gain|loss|\(loss\)|gain ?/? ?\(loss\))"
    ),
    same(OL, "other_income_net", r"other income, net"),
    same(OL, "investment_loss", r"investment (?:loss|income|\(loss\)|income ?/? ?\(loss\))"),
    same(H, "income_before_tax", r"income before income tax(?:es)? expenses?"),
    spec(
        H,
        "income_tax_expense",
        r"income tax(?:es)? expenses?",
        r"income tax(?:es)? expenses?",
        table_sign=-1,
    ),
    same(H, "net_income", r"net income"),
    same(
        H,
        "net_loss_attributable_to_noncontrolling_interests",
        r"net loss attributable to non-?controlling interests",
    ),
    spec(
        H,
        "net_loss_attributable_to_noncontrolling_interests",
        r"net income attributable to non-?controlling interests",
        table_sign=-1,
    ),
    spec(
        H,
        "net_income_attributable",
        "net income " + ATTRIBUTABLE_TABLE,
        "net income " + ATTRIBUTABLE_PROSE,
    ),
    spec(
        H,
        "share_based_comp",
        r"(?:add: ?)?share-based compensation expenses?",
        r"share-based compensation expenses?",
    ),
    same(H, "non_gaap_net_income", r"non-gaap net income"),
    same(H, "non_gaap_income_from_operations", r"non-gaap income from operations?"),
    spec(
        H,
        "non_gaap_net_income_attributable",
        "non-gaap net income " + ATTRIBUTABLE_TABLE,
        "non-gaap net income " + ATTRIBUTABLE_PROSE,
    ),
    spec(
        PS,
        "net_income_per_ads_diluted",
        r"net income per ads attributable to .+ ?- ?diluted",
        r"net income per fully diluted (?:ads|american depositary share|american depository "
        r"share)",
    ),
    spec(
        PS,
        "non_gaap_net_income_per_ads_diluted",
        r"non-gaap net income per ads attributable to .+ ?- ?diluted",
        r"non-gaap net income per fully diluted ads",
    ),
    spec(
        SC,
        "weighted_average_ads_diluted",
        r"weighted average ads used in calculating .+- ?diluted",
        r"weighted average diluted ads",
        unit=Unit.COUNT,
    ),
    spec(
        SC,
        "weighted_average_ads_basic",
        r"weighted average ads used in calculating .+- ?basic",
        r"weighted average basic ads",
        unit=Unit.COUNT,
    ),
    spec(
        RT,
        "net_income_margin",
        r"(?:gaap )?net income margin",
        r"net income margin",
        unit=Unit.PERCENT,
    ),
    same(RT, "non_gaap_net_income_margin", r"non-gaap net income margin", unit=Unit.PERCENT),
    spec(
        RT,
        "operating_margin",
        r"(?:gaap )?operating margin",
        r"operating margin",
        unit=Unit.PERCENT,
    ),
    same(RT, "non_gaap_operating_margin", r"non-gaap operating margin", unit=Unit.PERCENT),
)

METRIC_ROWS: tuple[RowSpec, ...] = (
    spec(M, "loan_volume", None, r"total facilitation and origination loan volume"),
    spec(M, "outstanding_balance", None, r"total outstanding loan balance"),
    spec(M, "dpd90_rate_pct", None, r"90 day\+ delinquency rate", unit=Unit.PERCENT),
    spec(M, "day1_delinquency_pct", None, r"day-1 delinquency rate", unit=Unit.PERCENT),
    spec(M, "collection_30d_pct", None, r"30-day collection rate", unit=Unit.PERCENT),
    spec(
        M,
        "repeat_borrower_contribution_pct",
        None,
        r"repeat borrower contribution",
        unit=Unit.PERCENT,
    ),
    spec(M, "loans_originated", None, r"\boriginated\s*$", unit=Unit.COUNT),
    spec(
        M,
        "cumulative_borrowers",
        None,
        r"cumulative borrowers with successful drawdown",
        unit=Unit.COUNT,
    ),
)

ROWS = STATEMENT_ROWS + METRIC_ROWS

CONTEXTS: tuple[ContextSpec, ...] = (
    ContextSpec(
        re.compile(r"net income per ordinary share attributable to .+"), PS, "net_income_per_share"
    ),
    ContextSpec(re.compile(r"net income per ads attributable to .+"), PS, "net_income_per_ads"),
    ContextSpec(
        re.compile(
            r"weighted average (?:number of )?shares used in calculating net income per "
            r"ordinary share"
        ),
        SC,
        "weighted_average_shares",
        Unit.COUNT,
    ),
    ContextSpec(
        re.compile(r"weighted average ads used in calculating .+"),
        SC,
        "weighted_average_ads",
        Unit.COUNT,
    ),
)
CONTEXT_LINES = re.compile(r"(basic|diluted)")


def clean(text: str) -> str:
    """Printed text without footnote marks, emphasis stars, escapes and doubled spaces."""
    text = FOOTNOTE_MARK.sub("", text).replace("*", "").replace("\\", "")
    return re.sub(r"\s+", " ", text)


def table_label(text: str) -> str:
    return clean(text).strip().rstrip(":").strip().lower()


def section_of(heading: str) -> Section | None:
    """The section a heading opens, OTHER for any other heading, None for a non-heading."""
    text = clean(heading).strip()
    if not is_heading(text):
        return None
    return next((section for section, rx in SECTION_HEADINGS if rx.search(text)), Section.OTHER)


def is_heading(text: str) -> bool:
    return (
        0 < len(text) <= 100
        and "\t" not in text
        and text[0].isalnum()
        and text[-1] not in ".,;:)”\"'"
    )
