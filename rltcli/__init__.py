"""The `rlt` command line, generated from stages/commands.py and the config dataclasses (click)."""
