"""One room per responsibility: who may import whom, and who may spell a Redis key.

Direction: `schemas` <- `services.common` <- workers (ingest, forecast, guidance, alerts) and
`services.extract` <- `services.api`, `services.cli`, `services.app`. Every import counts, a
function's own and a type-checking one included: a layer is a dependency, not a start-up cost.
Redis key names are spelled only by the store modules and the transport."""

from __future__ import annotations

import ast
import fnmatch
import re
from dataclasses import dataclass
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit
ROOT = Path(__file__).resolve().parents[2]
WORKERS = ("services.ingest", "services.forecast", "services.guidance", "services.alerts")
LAYERS = {
    "schemas": 0,
    "services.common": 1,
    **dict.fromkeys(WORKERS, 2),
    "services.extract": 2,  # the announcement parser: beside the workers, used from above
    **dict.fromkeys(("services.api", "services.cli", "services.app"), 3),
}
TOP = 3  # the entry points may use one another, but never in a circle
KEY_SPELLERS = ("services/*/store.py", "services/common/histories/*", "services/common/transport/*")


# --- reading the imports --------------------------------------------------------------------


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(source: str, module: str, *, is_package: bool = False) -> set[str]:
    """Every module `source` imports, anywhere in it, relative imports made absolute."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = _absolute(node, module, is_package=is_package)
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)  # a submodule, maybe
    return found


def _absolute(node: ast.ImportFrom, module: str, *, is_package: bool) -> str:
    if not node.level:
        return node.module or ""
    package = module.split(".") if is_package else module.split(".")[:-1]
    base = package[: len(package) - (node.level - 1)]
    return ".".join([*base, *([node.module] if node.module else [])])


def package_of(module: str) -> str | None:
    """The room a module lives in: `schemas`, `services.<name>` or None (outside both)."""
    parts = module.split(".")
    if parts[0] == "schemas":
        return "schemas"
    if parts[0] == "services" and len(parts) > 1:
        return f"services.{parts[1]}"
    return None


def package_edges(sources: dict[str, tuple[str, bool]]) -> dict[tuple[str, str], set[str]]:
    """(importer, imported) package pairs, each with the modules that make it."""
    edges: dict[tuple[str, str], set[str]] = {}
    for module, (source, is_package) in sources.items():
        mine = package_of(module)
        for imported in imported_modules(source, module, is_package=is_package):
            theirs = package_of(imported)
            if mine and theirs and theirs != mine:
                edges.setdefault((mine, theirs), set()).add(module)
    return edges


def repository_sources() -> dict[str, tuple[str, bool]]:
    paths = [*ROOT.joinpath("services").rglob("*.py"), *ROOT.joinpath("schemas").rglob("*.py")]
    return {module_name(p): (p.read_text(encoding="utf-8"), p.name == "__init__.py") for p in paths}


# --- the rules --------------------------------------------------------------------------------


def cycles(edges: set[tuple[str, str]]) -> list[list[str]]:
    """Each circle of imports once, as the packages along it."""
    graph: dict[str, set[str]] = {}
    for importer, imported in edges:
        graph.setdefault(importer, set()).add(imported)
    found: list[list[str]] = []

    def visit(node: str, path: list[str]) -> None:
        for nxt in sorted(graph.get(node, ())):
            if nxt == path[0]:
                found.append(path)
            elif nxt not in path and nxt > path[0]:  # each circle from its least package
                visit(nxt, [*path, nxt])

    for start in sorted(graph):
        visit(start, [start])
    return found


def wrong_way(edges: set[tuple[str, str]]) -> list[tuple[str, str]]:
    """Imports against the direction: a package below the top using its own layer or above
    (so a worker never uses another worker); anything of `services` unknown to the layers."""
    bad = []
    for importer, imported in sorted(edges):
        mine, theirs = LAYERS.get(importer), LAYERS.get(imported)
        if mine is None or theirs is None or (mine < TOP and theirs >= mine):
            bad.append((importer, imported))
    return bad


# --- Redis key names ------------------------------------------------------------------------


@dataclass(frozen=True)
class KeyUse:
    line: int
    text: str


def key_name_uses(source: str) -> list[KeyUse]:
    """Where `source` spells a Redis key name: a `…streams.key(…)` or `…streams.company_key(…)`
    call (the Streams helpers every key goes through), or a string literal holding a cluster
    hash tag such as "{forecast}" (the only keys spelled by hand)."""
    nodes = list(ast.walk(ast.parse(source)))
    calls = [node for node in nodes if _is_key_call(node)]
    inside = {id(part) for call in calls for part in ast.walk(call)}  # reported with its call
    tags = [node for node in nodes if _is_hash_tag(node) and id(node) not in inside]
    uses = [KeyUse(node.lineno, ast.unparse(node)) for node in (*calls, *tags)]  # type: ignore[attr-defined]
    return sorted(uses, key=lambda use: use.line)


def _is_key_call(node: ast.AST) -> bool:
    if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
        return False
    receiver = ast.unparse(node.func.value).lower()
    return node.func.attr in ("key", "company_key") and receiver.endswith("streams")


HASH_TAG = re.compile(r"\{([\w.-]+\}(:.*)?)?")  # "{", "{forecast}", "{forecast}:dirty"


def _is_hash_tag(node: ast.AST) -> bool:
    text = node.value if isinstance(node, ast.Constant) else None
    return isinstance(text, str) and HASH_TAG.fullmatch(text) is not None


def spells_keys_legitimately(relative_path: str) -> bool:
    return any(fnmatch.fnmatch(relative_path, pattern) for pattern in KEY_SPELLERS)


def key_name_violations(root: Path = ROOT) -> list[str]:
    found = []
    for path in sorted(root.joinpath("services").rglob("*.py")):
        relative = path.relative_to(root).as_posix()
        if spells_keys_legitimately(relative):
            continue
        found += [f"{relative}:{u.line}: {u.text}" for u in key_name_uses(path.read_text())]
    return found


# --- the detectors, on sources written for them -----------------------------------------------


def test_imports_inside_functions_and_relative_imports_are_counted() -> None:
    source = (
        "import services.common.redis\n"
        "from . import sibling\n"
        "from ..forecast.core import engine\n"
        "def later():\n"
        "    from services.alerts.service import RedisSilenceStore\n"
    )

    found = imported_modules(source, "services.guidance.service")

    assert "services.common.redis" in found
    assert "services.guidance.sibling" in found
    assert "services.forecast.core.engine" in found
    assert "services.alerts.service" in found


def test_a_relative_import_in_a_package_init_starts_from_the_package() -> None:
    found = imported_modules("from .core import engine\n", "services.forecast", is_package=True)

    assert "services.forecast.core" in found


def test_package_edges_name_the_modules_behind_them() -> None:
    sources = {
        "services.ingest.service": ("from services.alerts import lifecycle\n", False),
        "services.ingest.facts": ("from services.ingest.service import x\n", False),
    }

    assert package_edges(sources) == {
        ("services.ingest", "services.alerts"): {"services.ingest.service"}
    }


def test_a_cycle_is_found_once_and_a_chain_is_none() -> None:
    circle = {("services.api", "services.cli"), ("services.cli", "services.app"),
              ("services.app", "services.api"), ("services.app", "services.common")}  # fmt: skip

    assert cycles(circle) == [["services.api", "services.cli", "services.app"]]
    assert cycles({("services.cli", "services.api"), ("services.api", "schemas")}) == []


@pytest.mark.parametrize(
    ("importer", "imported"),
    [
        ("services.ingest", "services.guidance"),  # a worker using another worker
        ("services.common", "services.ingest"),  # common using a worker
        ("services.common", "services.cli"),
        ("schemas", "services.common"),
        ("services.alerts", "services.api"),
        ("services.extract", "services.ingest"),
        ("services.newthing", "services.common"),  # a room the layers do not know
    ],
)
def test_an_import_against_the_direction_is_refused(importer: str, imported: str) -> None:
    assert wrong_way({(importer, imported)}) == [(importer, imported)]


@pytest.mark.parametrize(
    ("importer", "imported"),
    [
        ("services.common", "schemas"),
        ("services.forecast", "services.common"),
        ("services.api", "services.guidance"),
        ("services.cli", "services.api"),  # the top may use the top (cycles are rule 1)
        ("services.app", "services.alerts"),
    ],
)
def test_an_import_along_the_direction_is_allowed(importer: str, imported: str) -> None:
    assert wrong_way({(importer, imported)}) == []


def test_key_calls_and_hash_tags_are_key_name_uses() -> None:
    source = (
        "a = self._streams.company_key(company, 'facts')\n"
        "b = streams.key('companies')\n"
        "c = self.streams.key('errors', group)\n"
        "d = '{forecast}'\n"
        "e = '{' + company + '}'\n"
        "f = streams.key('{forecast}', 'dirty')\n"
    )

    lines = [use.line for use in key_name_uses(source)]

    assert lines == [1, 2, 3, 4, 5, 6]  # the call on line 6 once, its tag with it


def test_lookalikes_are_not_key_name_uses() -> None:
    source = (
        "rows = sorted(rows, key=lambda r: r.period)\n"
        "k = entry.key\n"
        "name = cache.key('x')\n"  # not a Streams object
        "label = 'forecasts'\n"
        "text = f'{company} has no value'\n"
        "doc = '{ not a tag }'\n"
        "payload = '{\"a\":1}'\n"
    )

    assert key_name_uses(source) == []


def test_stores_and_the_transport_may_spell_keys_and_nothing_else_may() -> None:
    assert spells_keys_legitimately("services/forecast/store.py")
    assert spells_keys_legitimately("services/common/histories/facts.py")
    assert spells_keys_legitimately("services/common/transport/streams.py")
    assert not spells_keys_legitimately("services/forecast/service.py")
    assert not spells_keys_legitimately("services/api/reader.py")
    assert not spells_keys_legitimately("services/common/metrics.py")


# --- the repository ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def edges() -> dict[tuple[str, str], set[str]]:
    return package_edges(repository_sources())


def test_no_circle_of_imports_among_the_services_packages(
    edges: dict[tuple[str, str], set[str]],
) -> None:
    assert cycles(set(edges)) == []


def test_every_import_goes_the_way_of_the_layers(edges: dict[tuple[str, str], set[str]]) -> None:
    bad = {pair: sorted(edges[pair]) for pair in wrong_way(set(edges))}

    assert bad == {}


def test_the_layers_name_every_services_package() -> None:
    packages = {package_of(module) for module in repository_sources()} - {None}

    assert packages <= set(LAYERS) | {"services"}, packages - set(LAYERS)


def test_only_store_modules_and_the_transport_spell_redis_key_names() -> None:
    assert key_name_violations() == []
