"""Print two benchmark result files side by side: `python -m benchmarks.compare OLD NEW`.

Each file holds one JSON document (or a JSON list of them) as printed by a workload.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any


def _load(path: str) -> dict[str, dict[str, Any]]:
    data = json.loads(Path(path).read_text())
    documents = data if isinstance(data, list) else [data]
    return {d["workload"]: d for d in documents}


def _flatten(figures: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in figures.items():
        if isinstance(value, dict):
            out.update(_flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("old")
    parser.add_argument("new")
    args = parser.parse_args()
    old, new = _load(args.old), _load(args.new)
    for workload in sorted(set(old) | set(new)):
        print(
            f"== {workload}  ({old.get(workload, {}).get('commit', '-')} -> {new.get(workload, {}).get('commit', '-')})"
        )
        a = _flatten(old.get(workload, {}).get("figures", {}))
        b = _flatten(new.get(workload, {}).get("figures", {}))
        width = max((len(k) for k in a | b), default=10)
        for key in sorted(a | b):
            x, y = a.get(key, "-"), b.get(key, "-")
            ratio = ""
            if isinstance(x, (int, float)) and isinstance(y, (int, float)) and x:
                ratio = f"  x{y / x:.2f}"
            print(f"  {key:<{width}}  {x!s:>16}  {y!s:>16}{ratio}")


if __name__ == "__main__":
    main()
