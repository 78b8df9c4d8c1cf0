"""`rlt score` (logic in stages/score.py)."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from rltcli.common import ConfigOpt, ForceOpt, Overrides, PrintConfigOpt, call_stage


def _opt(help: str, *names: str):
    return typer.Option(*names, help=help, show_default=False)


def score(teacher: Annotated[Optional[str], _opt("Teacher model directory or hub id.", "--teacher")] = None,
          student: Annotated[Optional[str], _opt("Student model directory or hub id.", "--student")] = None,
          data: Annotated[Optional[str], _opt("Traces/dataset artifact or file with question, solution, explanation.", "--data")] = None,
          out: Annotated[Optional[str], _opt("Output traces artifact directory.", "--out")] = None,
          batch_size: Annotated[Optional[int], _opt("Rows per padded forward pass (default 8).", "--batch-size")] = None,
          shard: Annotated[Optional[str], _opt("Score only shard i/n of the rows.", "--shard")] = None,
          device: Annotated[Optional[str], _opt("auto, cpu, cuda or cuda:N.", "--device")] = None,
          seed: Annotated[Optional[int], _opt("Random seed.", "--seed")] = None,
          trust_remote_code: Annotated[bool, typer.Option("--trust-remote-code", help="Allow model code from the model directory.")] = False,
          config: ConfigOpt = None, force: ForceOpt = False, print_config: PrintConfigOpt = False,
          overrides: Overrides = None) -> None:
    """RLT reward of given explanations: a traces artifact with the reward columns (resumable)."""
    call_stage("score", "ScoreConfig", "run", config, overrides, print_config=print_config,
               teacher=teacher, student=student, data=data, out=out, batch_size=batch_size, shard=shard,
               device=device, seed=seed, trust_remote_code=trust_remote_code or None, force=force or None)
