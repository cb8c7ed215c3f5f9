"""The wheel the image installs carries the bundled data: built from the files the Docker build
context lets in, installed into a fresh virtualenv, `guidepost demo --json` runs from there.

The wheel is built by pip as the Dockerfile builds it (isolated build, pip's cache reused). The
fresh environment gets the wheel itself and borrows the third-party dependencies of this one (a
path entry naming its site-packages, whose own .pth files, this checkout's editable install
among them, are not processed): a full dependency install would add minutes and tell nothing
about the package's own files."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

from tests.deploy.deploy_files import REPO

pytestmark = pytest.mark.deploy

# what deploy/Dockerfile copies into its builder stage (and .dockerignore lets in)
BUILD_CONTEXT = ("pyproject.toml", "README.md", "schemas", "services")
BUNDLED = ("demo.json", "qfin_quarterly.csv", "qfin_guidance.csv", "qfin_2024q1_announcement.txt")


def run(*command: str | Path, cwd: Path, timeout: float, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(
        [str(part) for part in command],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert done.returncode == 0, f"{command[:3]} failed:\n{done.stderr[-3000:]}"
    return done.stdout


def copy_build_context(target: Path) -> Path:
    target.mkdir()
    for name in BUILD_CONTEXT:
        source = REPO / name
        if source.is_dir():
            shutil.copytree(source, target / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(source, target / name)
    return target


def outside_this_checkout() -> dict[str, str]:
    """No Redis of the caller's (the demo starts its own), nothing pointing into the repo."""
    return {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("GUIDEPOST_", "REDIS_"))
        and name not in ("PYTHONPATH", "VIRTUAL_ENV")
    }


@pytest.mark.timeout(600)
def test_the_installed_wheel_runs_the_demo_on_its_bundled_data(tmp_path: Path) -> None:
    source = copy_build_context(tmp_path / "context")
    run(sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", tmp_path / "dist", source,
        cwd=tmp_path, timeout=300)  # fmt: skip
    [wheel] = (tmp_path / "dist").glob("guidepost-*.whl")
    members = set(zipfile.ZipFile(wheel).namelist())
    assert {f"services/data/{name}" for name in BUNDLED} <= members

    venv = tmp_path / "venv"
    run(sys.executable, "-m", "venv", "--without-pip", venv, cwd=tmp_path, timeout=120)
    python = venv / "bin" / "python"
    site = Path(run(python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])",
                    cwd=tmp_path, timeout=60).strip())  # fmt: skip
    borrowed = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    (site / "borrowed-dependencies.pth").write_text("\n".join(sorted(borrowed)) + "\n")
    run(sys.executable, "-m", "pip", "--python", python, "install", "--no-deps", "-q", wheel,
        cwd=tmp_path, timeout=300)  # fmt: skip

    env = outside_this_checkout()
    where = "from services.cli.demo import DEFAULT_DATA_DIR as d; print(d)"
    data_dir = Path(run(python, "-c", where, cwd=tmp_path, timeout=60, env=env).strip())
    assert data_dir.is_relative_to(site), f"the demo reads {data_dir}, not the installed package"
    report = json.loads(
        run(venv / "bin" / "guidepost", "demo", "--json", cwd=tmp_path, timeout=420, env=env)
    )
    assert {f["company"] for f in report["forecasts"]} == {"QFIN"}
    assert report["alerts"], "the demo raised its alerts"
