"""The shipped artefact: dist/sluicegate.pyz copied elsewhere runs with only python3.11.

``make test`` builds the zipapp first and names it in $SLUICEGATE_TEST_ZIPAPP; a bare ``pytest``
run without it skips this module.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from sluicegate import __version__
from tests.conftest import Simulator
from tests.test_cli import Running, clean_env

ZIPAPP = os.environ.get("SLUICEGATE_TEST_ZIPAPP")
pytestmark = pytest.mark.skipif(not ZIPAPP, reason="set SLUICEGATE_TEST_ZIPAPP (make test does)")

# The interpreter the venv was made from: it has none of the venv's packages, as on a fresh host.
BASE_PYTHON = getattr(sys, "_base_executable", sys.executable)


@pytest.fixture
def copied(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    assert ZIPAPP and Path(ZIPAPP).is_file(), f"{ZIPAPP} is missing: run 'make zipapp'"
    target = tmp_path / "elsewhere" / "sluicegate.pyz"
    target.parent.mkdir()
    shutil.copy(ZIPAPP, target)
    env = clean_env(SHIV_ROOT=str(tmp_path / "shiv-cache"))
    for var in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME"):
        env.pop(var, None)
    return target, env


def test_base_python_has_no_sluicegate_of_its_own() -> None:
    probe = subprocess.run(
        [BASE_PYTHON, "-c", "import sluicegate"], capture_output=True, cwd="/", timeout=30
    )
    assert probe.returncode != 0, "the check below would prove nothing"


def test_zipapp_version(copied: tuple[Path, dict[str, str]]) -> None:
    pyz, env = copied
    result = subprocess.run(
        [BASE_PYTHON, str(pyz), "--version"],
        capture_output=True,
        text=True,
        cwd=pyz.parent,
        env=env,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"sluicegate {__version__}"


def test_zipapp_serves_through_the_rust_core(
    copied: tuple[Path, dict[str, str]], simulator: Simulator
) -> None:
    pyz, env = copied
    env["VLLM_BASE_URL"] = f"{simulator.base_url}/v1"
    gw = Running([BASE_PYTHON, str(pyz), "serve", "--port", "0"], env, cwd=str(pyz.parent))
    try:
        port = int(gw.wait_for(r"listening on http://127\.0\.0\.1:(\d+)", timeout=120).group(1))
        answer = httpx.post(
            f"http://127.0.0.1:{port}/v1/chat/completions",
            json={
                "model": "vllm/sim-small",
                "stream": True,
                "messages": [{"role": "user", "content": "x #sim tokens=3"}],
            },
            timeout=30,
        )
        assert answer.status_code == 200
        assert answer.content.rstrip().endswith(b"data: [DONE]")
        assert b'"model":"vllm/sim-small"' in answer.content
    finally:
        gw.proc.terminate()
        gw.proc.wait(timeout=20)
