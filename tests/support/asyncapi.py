"""The AsyncAPI project's own parser (`@asyncapi/parser`, npm), installed once into a cache.

`make test` installs it best-effort (see the Makefile's system-deps); a test that needs it and
finds neither it nor a way to install it skips, saying why.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

PACKAGE = "@asyncapi/parser@3"
SCRIPT = Path(__file__).with_name("asyncapi_parse.js")
INSTALL_TIMEOUT_S = 300


def cache_dir() -> Path:
    default = Path.home() / ".cache" / "guidepost" / "asyncapi-parser"
    return Path(os.environ.get("GUIDEPOST_ASYNCAPI_PARSER_DIR", default))


def parser_modules() -> tuple[Path | None, str]:
    """node_modules holding the parser, installing it if need be; else None and the reason."""
    if shutil.which("node") is None:
        return None, "node is not installed"
    modules = cache_dir() / "node_modules"
    if (modules / "@asyncapi" / "parser" / "package.json").is_file():
        return modules, ""
    npm = shutil.which("npm")
    if npm is None:
        return None, f"npm is not installed and {PACKAGE} is not in {cache_dir()}"
    cache_dir().mkdir(parents=True, exist_ok=True)
    try:
        installed = subprocess.run(
            [npm, "install", "--prefix", str(cache_dir()), "--no-audit", "--no-fund", PACKAGE],
            capture_output=True,
            text=True,
            timeout=INSTALL_TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return (
            None,
            f"npm install {PACKAGE} took over {INSTALL_TIMEOUT_S} s (registry unreachable?)",
        )
    if installed.returncode != 0:
        return None, f"npm install {PACKAGE} failed: {installed.stderr.strip()[-300:]}"
    return modules, ""


def parse(document: dict[str, Any], modules: Path) -> dict[str, Any]:
    """The parser's error diagnostics and each operation's action and channel addresses."""
    result = subprocess.run(
        ["node", str(SCRIPT)],
        input=json.dumps(document),
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "NODE_PATH": str(modules)},
        check=False,
    )
    assert result.returncode == 0, result.stderr
    parsed: dict[str, Any] = json.loads(result.stdout)
    return parsed
