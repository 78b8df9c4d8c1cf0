"""Outside data: reading a file, folder or hub dataset (`files`) and converting a published layout to
dataset rows (`layouts`: Bespoke-Stratos, MATH-500, AIME, GPQA, plain columns). `rlt data import`
(stages/commands/data.py) is their one user; a new layout is one converter in `layouts.py`."""
