"""benchmarks/gpu.sh --smoke: the GPU benchmark's code on CPU with tiny shapes, one table and its JSON."""

import json
import os
import subprocess
import sys

from tests.conftest import ONE_THREAD, ROOT


def test_gpu_benchmark_smoke_prints_the_table_and_writes_json(tmp_path):
    out = tmp_path / "bench.json"
    proc = subprocess.run(["bash", str(ROOT / "benchmarks" / "gpu.sh"), "--smoke", "--out", str(out)],
                          capture_output=True, text=True, timeout=300, check=False,
                          env={**os.environ, **ONE_THREAD, "PYTHON": sys.executable})
    assert proc.returncode == 0, proc.stderr[-3000:]
    for needle in ("distill tokens/s, padding_free (rlt_sdpa_per_sequence)", "reward rows/s, batched",
                   "floor (bodies + lm_head at spans)", "hf generate tokens/s, one prompt", "teach seconds/step"):
        assert needle in proc.stdout
    res = json.loads(out.read_text())
    assert res["mode"] == "smoke" and set(res["distill"]) == {"padded", "padding_free", "packed"}
    assert all(v["tokens_per_s"] > 0 for v in res["distill"].values())
    assert res["distill"]["padded"]["tokens"] == res["distill"]["padding_free"]["tokens"]  # same real tokens
    assert set(res["reward"]["rows_per_s"]) == {"batched", "bodies", "floor", "one_at_a_time_full_logits"}
    assert res["generate"]["batched"]["tokens"] > 0 and res["teach"]["steps"] >= 1


def test_missing_dependency_is_named_in_one_line(monkeypatch, capsys):
    import importlib.util

    sys.path.insert(0, str(ROOT / "benchmarks"))
    import gpu

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name in ("trl", "math_verify")
                        else real(name, *a))
    monkeypatch.setattr(sys, "argv", ["gpu.py", "--smoke"])
    assert gpu.main() == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["benchmarks/gpu.sh: missing trl, math-verify (pip install trl math-verify)"]
