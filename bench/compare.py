"""Compare two benchmark outputs: `python -m bench.compare BEFORE.json AFTER.json [--json]`.

Each file holds the one JSON object a benchmark printed (or the last JSON line of a log).
Numeric keys are shown with the absolute and relative change; others when they differ.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any


def load(path: Path) -> dict[str, Any]:
    lines = [line for line in path.read_text().splitlines() if line.strip().startswith("{")]
    if not lines:
        raise SystemExit(f"{path}: no JSON object found")
    document: dict[str, Any] = json.loads(lines[-1])
    return document


def differences(before: dict[str, Any], after: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for key in sorted(set(before) | set(after)):
        old, new = before.get(key), after.get(key)
        row: dict[str, Any] = {"key": key, "before": old, "after": new}
        if isinstance(old, int | float) and isinstance(new, int | float):
            row["change"] = round(new - old, 6)
            row["change_pct"] = round((new - old) / old * 100, 2) if old else None
        elif old == new:
            continue
        rows.append(row)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("before", type=Path)
    parser.add_argument("after", type=Path)
    parser.add_argument("--json", action="store_true", help="Print the differences as JSON.")
    args = parser.parse_args()
    rows = differences(load(args.before), load(args.after))
    if args.json:
        print(json.dumps(rows))
        return
    for row in rows:
        pct = row.get("change_pct")
        change = f"{row['change']:+g} ({pct:+.1f}%)" if pct is not None else row.get("change", "")
        print(f"{row['key']:<16} {row['before']!s:>14} → {row['after']!s:<14} {change}")


if __name__ == "__main__":
    main()
