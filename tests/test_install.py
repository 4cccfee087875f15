"""The layout works however vla-agent is installed: a regular (non-editable) install, used from
any folder and from the repository root (whose own ``vla_agent/`` folder comes first on the path),
has every subpackage, the prompts and the shipped checkpoint; the layering contracts hold on it."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PROBE = (
    "import vla_agent.sim.robots, vla_agent.skills.place_beside, vla_agent.agent.core.session, "
    "vla_agent.agent.planning.llm as llm, vla_agent.vla.checkpoint as ck, vla_agent.cli; "
    "assert (llm.PROMPTS_DIR / 'system.md').is_file(); "
    "assert (ck.DEFAULT_CHECKPOINT / 'model.safetensors').is_file(); "
    "import vla_agent.sim; print(vla_agent.sim.__file__)"
)


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("wheel")
    src = tmp / "src"  # a clean copy: no build folders or caches of the checkout
    shutil.copytree(
        ROOT,
        src,
        ignore=shutil.ignore_patterns(".venv", ".git", "runs", "build", "*.egg-info", "__pycache__", "data"),
    )
    cmd = [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(tmp / "site"), str(src)]
    if _recent_setuptools():  # build with the setuptools at hand (no download); else pip fetches one
        cmd.insert(4, "--no-build-isolation")
    subprocess.run(cmd, check=True, capture_output=True, timeout=600)
    return tmp / "site"


def _recent_setuptools() -> bool:
    if importlib.util.find_spec("setuptools") is None:
        return False
    import setuptools

    return int(setuptools.__version__.split(".")[0]) >= 77  # pyproject's build requirement


def _python(site: Path, cwd: Path, code: str) -> str:
    env = {**os.environ, "PYTHONPATH": str(site)}
    r = subprocess.run(
        [sys.executable, "-c", code], cwd=cwd, env=env, capture_output=True, text=True, timeout=120
    )
    assert r.returncode == 0, r.stderr[-2000:]
    return r.stdout.strip()


def test_a_regular_install_has_every_subpackage_from_any_folder(site, tmp_path):
    where = _python(site, tmp_path, PROBE)
    assert Path(where).is_relative_to(site)  # the installed copy, not the checkout


def test_the_checkout_imports_from_its_root_whatever_is_installed(site):
    where = _python(site, ROOT, PROBE)
    assert Path(where).is_relative_to(ROOT)  # the checkout's own sources, all of them


def test_the_layering_contracts_hold_on_the_installed_package(site, tmp_path):
    lint = shutil.which("lint-imports") or str(Path(sys.executable).parent / "lint-imports")
    if not Path(lint).exists():
        pytest.skip("import-linter is not installed (pip install -e '.[dev]')")
    env = {**os.environ, "PYTHONPATH": str(site)}
    r = subprocess.run(
        [lint, "--config", str(ROOT / "pyproject.toml")],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stdout[-3000:]
    assert "0 broken" in r.stdout
