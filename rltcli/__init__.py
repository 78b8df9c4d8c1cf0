"""The `rlt` command line, generated from stages/commands/__init__.py and the config dataclasses (typer)."""
