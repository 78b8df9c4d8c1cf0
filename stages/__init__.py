"""rlt: the logic behind every `rlt` command, importable without the CLI.

Folders by concern, lowest layer first (each imports only its own layer and those
before it; tests/unit/test_layers.py checks it): the core here (errors, config,
progress, reward_record), artifacts/, models/, method/, verify/, training/,
engines/, commands/ (one module per command, the command table in its
__init__), pipelines/ (`rlt run` and its executors). docs/design.md is the map.
"""

__version__ = "0.1.0"
