"""How a benchmark ends: a table of its figures, and with ``--json`` one JSON object as last line."""

from __future__ import annotations

import json
from collections.abc import Sequence


def print_report(
    header: Sequence[str], rows: Sequence[Sequence[object]], result: object, as_json: bool
) -> int:
    """Print ``rows`` under ``header`` (the first column left-aligned, the others right-aligned),
    then, with ``as_json``, ``result`` as one JSON line. Returns 0, the benchmark's exit status."""
    table = [[str(cell) for cell in row] for row in [header, *rows]]
    widths = [max(len(row[i]) for row in table) + 2 for i in range(len(header))]
    for first, *rest in table:
        print(
            f"{first:<{widths[0]}}"
            + "".join(f"{cell:>{w}}" for cell, w in zip(rest, widths[1:], strict=True))
        )
    if as_json:
        print(json.dumps(result))
    return 0
