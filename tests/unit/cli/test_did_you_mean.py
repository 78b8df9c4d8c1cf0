"""A mistyped name is refused in one line naming the nearest valid one (commands, pipelines, steps, ${...}
references, report's --compare models); a YAML file that does not parse is named with its line and column."""

from __future__ import annotations

import json

import pytest

from rltcli.app import main
from stages.errors import UserError


def cli(capsys, *argv) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as e:
        main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return e.value.code, out, err


def one_line(capsys, *argv) -> str:
    code, _out, err = cli(capsys, *argv)
    assert code == 2 and len(err.strip().splitlines()) == 1 and err.startswith("rlt: error: "), (code, err)
    return err.strip()


@pytest.mark.parametrize("argv,nearest", [
    (["distil"], "distill"), (["evl"], "eval"), (["data", "imprt", "x"], "import"), (["modle", "tiny"], "model"),
    (["run", "demoo"], "demo"), (["run", "demo-corelation"], "demo-correlation"),
    (["run", "demo", "--from", "traces-rll", "--plan"], "traces-rl"),
    (["run", "demo", "--until", "studnet-rl", "--plan"], "student-rl"),
])
def test_a_mistyped_name_names_the_nearest(capsys, tmp_path, argv, nearest):
    err = one_line(capsys, *argv, *(["--runs", tmp_path] if argv[0] == "run" else []))
    assert f"did you mean '{nearest}'?" in err


def test_a_name_near_nothing_lists_the_valid_ones(capsys):
    err = one_line(capsys, "xyzzy")
    assert "did you mean" not in err and "teach, generate, distill" in err


PIPE = """p:
  vars: {seed: 0}
  steps:
    train: {command: data synth, options: {n: 8, seed: "${seed}"}}
    %s
"""


@pytest.mark.parametrize("step,fragment", [
    ('dedup: {command: data merge, options: {inputs: ["${trian}"]}}', ("${trian} is not an earlier step or a "
                                                                       "variable (did you mean 'train'?)")),
    ('dedup: {command: data merge, options: {inputs: ["${sed}"]}}', "(did you mean 'seed'?)"),
    ('dedup: {command: data merge, options: {inputs: ["${dedup}"]}}', "(a step reads only the steps above it)"),
    ("dedup: {command: data synt}", "(did you mean 'data synth'?)"),
    ("dedup: {comand: data synth}", "did you mean 'command'?"),
    ("dedup: {command: data synth, options: {sed: 1}}", "did you mean 'seed'?"),
])
def test_pipeline_files_name_the_nearest(capsys, tmp_path, step, fragment):
    f = tmp_path / "p.yaml"
    f.write_text(PIPE % step)
    err = one_line(capsys, "run", "p", "--file", f, "--runs", tmp_path / "runs")
    assert fragment in err and "step 'dedup'" in err
    assert not (tmp_path / "runs").exists()


def _eval_run(path, models):
    """An eval step artifact of `models`, each right on its one question (its summary as eval writes it)."""
    from dataclasses import dataclass

    from stages.artifacts.layout import summary_path
    from stages.artifacts.writer import ArtifactWriter
    from stages.commands.evaluate import summarize
    from stages.config import opt

    @dataclass
    class Cfg:
        out: str = opt("", "out", hash=False)

    rows = [{"id": "0", "sample": 0, "question": "q", "answer": "1", "task": "addition", "model": m,
             "response": "r", "extracted": "1", "correct": True, "response_tokens": 3, "truncated": False,
             "source": "synth-test"} for m in models]
    with ArtifactWriter(path, "eval", Cfg(), key=("model", "id", "sample")) as w:
        w.write(rows)
        summary_path(path).write_text(json.dumps(summarize(rows)))
        w.finish()


def test_report_refuses_a_compare_pair_naming_no_evaluated_model(capsys, tmp_path):
    _eval_run(tmp_path / "run" / "eval", ["runs/x/student-rl", "runs/x/student-warmup"])
    out = tmp_path / "rep"
    err = one_line(capsys, "report", tmp_path / "run", "--out", out, "--compare", "student-rl:student-wramup")
    assert "'student-wramup'" in err and "did you mean 'student-warmup'?" in err and not out.exists()
    err = one_line(capsys, "report", tmp_path / "run", "--out", out, "--compare", "student-rl")
    assert "not a pair A:B" in err and not out.exists()
    code, _, err = cli(capsys, "report", tmp_path / "run", "--out", out, "--compare", "student-rl:student-warmup")
    assert code == 0, err
    assert "student-rl - student-warmup" in (out / "report.md").read_text()


@pytest.mark.parametrize("text,where,problem", [
    ("a: 1\nb: [1, 2\nc: 3\n", ":3:2 is not valid YAML", "expected ',' or ']'"),
    ("n: 1\n  seed: 2\n", ":2:7 is not valid YAML", "mapping values are not allowed here"),
    ("n: 1\nseed: 2\nn: 3\n", ":3:1 is not valid YAML", "key 'n' given twice (first on line 1)"),
    ('n: "abc\n', ":2:1 is not valid YAML", "end of stream (while scanning a quoted scalar started at 1:4)"),
])
def test_yaml_errors_name_file_line_and_column(capsys, tmp_path, text, where, problem):
    f = tmp_path / "c.yaml"
    f.write_text(text)
    err = one_line(capsys, "data", "synth", "--out", tmp_path / "d", "--config", f)
    assert f"config file {f}{where}: " in err and problem in err and not (tmp_path / "d").exists()
    pipe = tmp_path / "p.yaml"
    pipe.write_text("p:\n  steps:\n    a: {command: data synth}\n" + "".join("  " + line + "\n" for line in
                                                                              text.splitlines()))
    err = one_line(capsys, "run", "p", "--file", pipe, "--runs", tmp_path / "runs")
    line = int(where.split(":")[1]) + 3  # the same text three lines down
    assert f"pipelines file {pipe}:{line}:" in err and problem.split(" (")[0] in err


def test_merge_keys_still_override(tmp_path):
    from stages.config import load_yaml

    f = tmp_path / "c.yaml"
    f.write_text("base: &b {n: 1, seed: 2}\nmine:\n  <<: *b\n  n: 5\n")
    assert load_yaml(f)["mine"] == {"n": 5, "seed": 2}


def test_a_config_file_not_utf8_names_its_line(capsys, tmp_path):
    f = tmp_path / "c.yaml"
    f.write_bytes(b"n: 4\nstyle: caf\xe9\n")
    err = one_line(capsys, "data", "synth", "--out", tmp_path / "d", "--config", f)
    assert "is not UTF-8 text (byte 0xe9 on line 2): save it as UTF-8" in err


def test_did_you_mean_wording():
    from stages.errors import did_you_mean

    assert did_you_mean("distil", ["distill", "eval"]) == "did you mean 'distill'? "
    assert did_you_mean("zzz", ["distill", "eval"]) == ""
    with pytest.raises(UserError):
        raise UserError("x")
