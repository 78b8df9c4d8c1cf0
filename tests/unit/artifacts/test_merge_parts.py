"""`rlt data merge` joins the parts of one run: configs equal but for --shard, the same models; a missing shard warned."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import pytest

from stages.artifacts.writer import ArtifactWriter
from stages.commands.data import MergeConfig, merge
from stages.config import opt
from stages.errors import UserError
from tests.unit.artifacts.test_layout import kind_rows


@dataclass
class GenCfg:
    out: str = opt("", "out", hash=False)
    teacher: str = opt("", "teacher", input=True)
    data: str = opt("", "data", input=True)
    temperature: float = opt(0.7, "temperature")
    shard: str | None = opt(None, "shard")


def _part(path, rows, **cfg):
    cfg = GenCfg(out=str(path), **cfg)
    with ArtifactWriter(path, "traces", cfg, inputs={k: getattr(cfg, k) for k in ("teacher", "data")}) as w:
        w.write(rows)
        w.finish()
    return str(path)


@pytest.fixture
def world(tmp_path):
    (tmp_path / "t1").write_text("teacher one")
    (tmp_path / "t2").write_text("teacher two")
    (tmp_path / "d").write_text("data")
    return tmp_path


def test_shards_of_one_run_merge(world, caplog):
    rows = kind_rows("traces", 6)
    a = _part(world / "s0", rows[:3], teacher=str(world / "t1"), data=str(world / "d"), shard="0/2")
    b = _part(world / "s1", rows[3:], teacher=str(world / "t1"), data=str(world / "d"), shard="1/2")
    with caplog.at_level(logging.WARNING):
        merge(MergeConfig(inputs=[a, b], out=str(world / "m")))
    assert "missing" not in caplog.text


@pytest.mark.parametrize("other, fragment", [
    ({"temperature": 1.0}, "their configs differ in temperature"),
    ({"teacher": "t2"}, "input teacher differs"),
])
def test_parts_of_different_runs_are_refused(world, other, fragment):
    rows = kind_rows("traces", 6)
    a = _part(world / "s0", rows[:3], teacher=str(world / "t1"), data=str(world / "d"), shard="0/2")
    spec = {"teacher": str(world / "t1"), "data": str(world / "d"), "shard": "1/2"}
    spec.update({k: str(world / v) if k == "teacher" else v for k, v in other.items()})
    b = _part(world / "s1", rows[3:], **spec)
    with pytest.raises(UserError, match=fragment):
        merge(MergeConfig(inputs=[a, b], out=str(world / "m")))
    assert not (world / "m").exists()


def test_an_incomplete_set_of_shards_is_warned_of(world, caplog):
    a = _part(world / "s0", kind_rows("traces", 3), teacher=str(world / "t1"), data=str(world / "d"), shard="0/3")
    with caplog.at_level(logging.WARNING):
        merge(MergeConfig(inputs=[a], out=str(world / "m")))
    assert "merging 1 shard of 3: shards 1/3, 2/3 are missing" in caplog.text
