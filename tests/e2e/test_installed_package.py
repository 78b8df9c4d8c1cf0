"""The built wheel installs whole: a non-editable install runs a smoke chain outside the checkout.

The wheel is built from a copy of the tracked sources and installed (no
dependencies) into a fresh virtual environment whose only view of the
dependencies is the project venv's site-packages, appended by a `.pth` file.
The editable install's own path hooks live in `.pth` files of that folder,
which Python does not process for a folder added this way, so every `stages`
and `rltcli` module the chain imports comes from the wheel: a sub-package or a
data file (launch presets, the shipped pipelines) missing from it fails here.
"""

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

from tests.conftest import ROOT

TRACKED = ("pyproject.toml", "README.md", "rltcli", "stages")


def _sh(*args, cwd: Path, env: dict | None = None, timeout: int = 600) -> subprocess.CompletedProcess:
    proc = subprocess.run([str(a) for a in args], cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False,
                          env={**os.environ, **(env or {})})
    if proc.returncode != 0:
        raise AssertionError(f"{' '.join(map(str, args))} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return proc


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """A fresh venv with the wheel installed non-editable; returns its bin/ folder."""
    work = tmp_path_factory.mktemp("wheel")
    src = work / "src"
    src.mkdir()
    for name in TRACKED:
        p = ROOT / name
        if p.is_dir():
            shutil.copytree(p, src / name, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
        else:
            shutil.copy2(p, src / name)
    _sh(sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", work / "dist", src,
        cwd=work)
    (wheel,) = (work / "dist").glob("rlt-*.whl")
    venv = work / "venv"
    _sh(sys.executable, "-m", "venv", "--without-pip", venv, cwd=work)
    py = venv / "bin" / "python"
    site = Path(_sh(py, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])", cwd=work).stdout.strip())
    (site / "_rlt_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    _sh(sys.executable, "-m", "pip", "--python", py, "install", "-q", "--no-deps", "--no-index", wheel, cwd=work)
    return venv / "bin"


def test_wheel_holds_every_module_and_data_file(installed):
    (wheel,) = installed.parent.parent.glob("dist/rlt-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    tracked = {str(p.relative_to(ROOT)) for d in ("stages", "rltcli") for p in (ROOT / d).rglob("*")
               if p.suffix in (".py", ".yaml") and "__pycache__" not in p.parts}
    assert tracked <= names, f"missing from the wheel: {sorted(tracked - names)}"


def test_smoke_chain_from_the_installed_package(installed, tmp_path):
    rlt, env = installed / "rlt", {"OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    where = _sh(installed / "python", "-c", "import stages, rltcli; print(stages.__file__, rltcli.__file__)",
                cwd=tmp_path).stdout
    assert str(ROOT) not in where and str(installed.parent) in where
    _sh(rlt, "model", "tiny", "--out", "m", cwd=tmp_path, env=env)
    _sh(rlt, "data", "synth", "--out", "d", "n=4", cwd=tmp_path, env=env)
    rows = [{"problem": "What is $1+1$?", "solution": "It is $\\boxed{2}$.", "answer": "2", "subject": "Algebra",
             "level": 1, "unique_id": "test/algebra/1.json"},
            {"problem": "What is $\\frac{1}{2}+\\frac{1}{2}$?", "solution": "$\\boxed{1}$", "answer": "1",
             "subject": "Prealgebra", "level": 2, "unique_id": "test/prealgebra/2.json"}]
    (tmp_path / "math500.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    _sh(rlt, "data", "import", "math500.jsonl", "--format", "math500", "--out", "bench", cwd=tmp_path, env=env)
    _sh(rlt, "eval", "--model", "m", "--data", "bench", "--out", "e", "max_new_tokens=8", cwd=tmp_path, env=env)
    shown = _sh(rlt, "inspect", "e", cwd=tmp_path, env=env).stdout
    assert "complete" in shown
    plan = _sh(rlt, "run", "demo", "--plan", "--runs", "r", cwd=tmp_path, env=env).stdout
    assert "teacher-base" in plan  # the shipped pipelines are package data
    presets = _sh(installed / "python", "-c", "from stages.training.launch import preset_names; print(preset_names())",
                  cwd=tmp_path).stdout
    assert "zero3" in presets and "ddp-cpu" in presets
