"""rlt stages: the logic behind every `rlt` command, importable without the CLI.

Each stage module exposes a config dataclass and a thin `run(cfg)`.
"""

__version__ = "0.1.0"
