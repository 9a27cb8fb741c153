"""A latency table as the measuring code writes it, for the tests that cannot measure one (a board's table, a
hand-made table with known times): one place for the table's fields besides the entries."""

from __future__ import annotations

import dataclasses
from typing import Any

from cosep_deploy.latency.table import LatencyTable, TableKey, noise_summary


def stand_in_table(
    key: TableKey, entries: dict[str, dict[str, Any]], *, dense_ms: float, explained_ms: float, source: str
) -> LatencyTable:
    """``entries`` under ``key``; the noise summarises the entries' ``rel_iqr``, and the whole model took
    ``dense_ms`` of which the layers' table times explain ``explained_ms``."""
    rel_iqrs = [v for entry in entries.values() for row in entry["rel_iqr"] for v in row]
    return LatencyTable(
        key=dataclasses.asdict(key),
        entries=entries,
        whole_model={
            "dense_ms": dense_ms,
            "explained_ms": explained_ms,
            "explained_fraction": round(explained_ms / dense_ms, 3),
        },
        noise=noise_summary(rel_iqrs),
        seconds=1.0,
        source=source,
        provenance={},
    )
