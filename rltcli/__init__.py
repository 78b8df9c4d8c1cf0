"""The `rlt` command line: thin typer wrappers around `stages/`."""
