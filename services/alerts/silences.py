"""Parse the parts of `guidepost silence add` into a `Silence`. Pure: standard library only.

    guidepost silence add --match company=ACME --match kind=band_check --duration 2h \
        --comment "guidance call on Monday"

A matcher is `label=value`, where the value is exact or a shell-style glob (`company=Q*`).
A duration is one or more `<integer><unit>` parts with units s, m, h, d, w: `90m`, `2h`, `1d12h`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import datetime, timedelta

from services.alerts.lifecycle import LABEL_NAMES, Silence

_UNITS = {
    "s": timedelta(seconds=1),
    "m": timedelta(minutes=1),
    "h": timedelta(hours=1),
    "d": timedelta(days=1),
    "w": timedelta(weeks=1),
}
_DURATION_PART = re.compile(r"([0-9]+)([smhdw])")
MAX_DURATION = timedelta(days=366)


class SilenceError(ValueError):
    """A silence could not be built; the message names the bad part and a valid example."""


def parse_matcher(text: str) -> tuple[str, str]:
    """`'company=ACME'` → `('company', 'ACME')`."""
    label, sep, value = text.partition("=")
    label, value = label.strip(), value.strip()
    if not sep:
        raise SilenceError(f"--match {text!r} has no '='; expected label=value, e.g. company=ACME")
    if label not in LABEL_NAMES:
        raise SilenceError(
            f"--match {text!r} names unknown label {label!r}; "
            f"expected one of {', '.join(LABEL_NAMES)}"
        )
    if not value:
        raise SilenceError(f"--match {text!r} has an empty value; expected e.g. {label}=ACME")
    return label, value


def parse_matchers(texts: Iterable[str]) -> dict[str, str]:
    """Several `--match` options into one mapping; a label may appear only once."""
    matchers: dict[str, str] = {}
    for text in texts:
        label, value = parse_matcher(text)
        if label in matchers and matchers[label] != value:
            raise SilenceError(
                f"--match {text!r} conflicts with {label}={matchers[label]}; "
                f"give each label once (use a glob such as {label}='Q*' to match several)"
            )
        matchers[label] = value
    if not matchers:
        raise SilenceError("a silence needs at least one --match, e.g. --match company=ACME")
    return matchers


def parse_duration(text: str) -> timedelta:
    """`'90m'` → 90 minutes; `'1d12h'` → 36 hours. Positive and at most a year."""
    compact = text.strip().lower()
    if not compact or _DURATION_PART.sub("", compact):
        raise SilenceError(
            f"--duration {text!r} is not a duration; expected e.g. 90m, 2h, 1d or 1d12h "
            f"(units: {', '.join(_UNITS)})"
        )
    parts = _DURATION_PART.findall(compact)
    if any(len(count) > 8 for count, _ in parts):  # beyond any timedelta: surely too long
        total = MAX_DURATION + timedelta(days=1)
    else:
        total = sum((int(count) * _UNITS[unit] for count, unit in parts), timedelta(0))
    if total <= timedelta(0):
        raise SilenceError(f"--duration {text!r} is zero; a silence must last, e.g. 2h")
    if total > MAX_DURATION:
        raise SilenceError(
            f"--duration {text!r} is longer than {MAX_DURATION.days} days; "
            "silences that long hide real alerts, pick a shorter one"
        )
    return total


def build_silence(
    *,
    silence_id: str,
    matches: Iterable[str],
    duration: str,
    comment: str,
    created_by: str,
    now: datetime,
) -> Silence:
    """The silence `guidepost silence add` describes, starting `now`."""
    if not comment.strip():
        raise SilenceError("--comment is empty; say why, e.g. --comment 'guidance call Monday'")
    if not created_by.strip():
        raise SilenceError("created_by is empty; record who added the silence")
    if now.tzinfo is None:
        raise SilenceError("now must be timezone-aware, e.g. datetime.now(UTC)")
    return Silence(
        id=silence_id,
        matchers=parse_matchers(matches),
        starts_at=now,
        ends_at=now + parse_duration(duration),
        created_by=created_by.strip(),
        comment=comment.strip(),
    )
