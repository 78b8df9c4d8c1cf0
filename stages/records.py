"""The one rule for the JSON records rlt writes (manifests, progress, metrics.jsonl, samples.jsonl,
summaries, pipeline records): a number that is not finite (NaN, +-Infinity) is written as null.

Python's `json` writes such a float as bare `NaN` / `Infinity`, which is not JSON: jq, JavaScript's
`JSON.parse`, Postgres and most JSON libraries refuse the whole line. Every writer calls `dumps`.
"""

from __future__ import annotations

import json
import math
from typing import Any


def finite(value: Any) -> Any:
    """`value` with every non-finite float (numpy's too) inside dicts, lists and tuples replaced by None."""
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite(v) for v in value]
    if isinstance(value, float) or type(value).__name__ in ("float16", "float32", "float64"):
        return float(value) if math.isfinite(value) else None
    return value


def dumps(value: Any, **kw) -> str:
    """`json.dumps` of `finite(value)`; never writes NaN or Infinity (allow_nan=False checks it)."""
    return json.dumps(finite(value), allow_nan=False, **kw)
