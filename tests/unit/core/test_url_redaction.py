"""The one rule for credentials in URLs (stages/secrets.py): how a URL is shown and recorded, and how a
process started from a recorded config (a Slurm job from its spec, a launched rank) gets the full URL back
from the environment it inherits."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from stages import secrets
from stages.commands.evaluate import EvalConfig
from stages.config import resolve, to_dict
from stages.pipelines.jobs import Job
from tests.conftest import ROOT


@pytest.mark.parametrize("url,shown", [
    ("http://u:pw@h:8000/v1?api_key=k&v=2", "http://***@h:8000/v1?api_key=***&v=***"),
    ("https://token@h/v1", "https://***@h/v1"),
    ("http://127.0.0.1:8000/v1", "http://127.0.0.1:8000/v1"),
    ("http://h/v1#frag", "http://h/v1#***"),
])
def test_redact_url(url, shown):
    assert secrets.redact_url(url) == shown
    assert secrets.redact(f"cannot reach the server at {url} (refused)") == f"cannot reach the server at {shown} (refused)"


def test_a_recorded_url_is_revealed_only_from_the_environment(monkeypatch):
    url = "http://u:pw@h/v1?api_key=k"
    shown = secrets.stash(url)
    assert shown == "http://***@h/v1?api_key=***" and secrets.reveal(shown) == url
    for name in [n for n in list(os.environ) if n.startswith(secrets.ENV_PREFIX)]:
        monkeypatch.delenv(name)
    assert secrets.reveal(shown) is None and secrets.reveal("http://h/v1") == "http://h/v1"



def test_a_job_spec_holds_no_credentials_and_its_job_gets_them_back(tmp_path):
    url = "http://u:pw-Zz91@127.0.0.1:8000/v1?api_key=key-Qq12"
    cfg = resolve(EvalConfig, options={"models": ["m"], "data": "d", "out": str(tmp_path / "o"),
                                       "engine": {"name": "openai", "base_url": url}})
    spec = tmp_path / "job.json"
    spec.write_text(Job("ev", "ev", "eval", to_dict(cfg), False).to_json())
    assert "pw-Zz91" not in spec.read_text() and "key-Qq12" not in spec.read_text()
    code = ("import sys; from stages.commands.evaluate import EvalConfig; from stages.config import resolve; "
            "from stages.pipelines.jobs import Job; "
            "print(resolve(EvalConfig, options=Job.load(sys.argv[1]).config).engine.base_url)")
    child = subprocess.run([sys.executable, "-c", code, str(spec)], capture_output=True, text=True, cwd=ROOT,
                           env=os.environ.copy(), check=True)  # a job inherits the environment it was submitted from
    assert child.stdout.strip() == url
