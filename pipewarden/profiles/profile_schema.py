"""The profile table's Pandera model, run on the rows a build changed, as a sync runs a table's
model on each batch (`checks.validation.validate`): the same failures, the same reasons.

The build's own SQL checks (`build._check`) count over the whole table (one row per customer,
scores in range, declared segments); this model looks at the changed rows' values, which is
where a wrong rule or a bad input shows first, at the cost of reading only those rows.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import polars as pl

from pipewarden.checks.validation.validate import validate
from pipewarden.config import ProfilesConfig

#: Failing values shown in a check's reason, at most.
SHOWN = 5


def profile_model(spec: ProfilesConfig) -> Any:
    """A Pandera model of one profile row: a key, counts and scores in range, a known segment."""
    import pandera.polars as pa

    scores = pa.Check.in_range(1, spec.scores)
    segments = [rule.name for rule in spec.segments] + [spec.default_segment]
    return pa.DataFrameSchema(
        {
            "customer_id": pa.Column(pl.String, nullable=False),
            "frequency": pa.Column(pl.Int64, pa.Check.ge(0), nullable=False, coerce=True),
            "monetary": pa.Column(pl.Float64, nullable=False, coerce=True),
            "r": pa.Column(pl.Int64, scores, nullable=True, coerce=True),
            "f": pa.Column(pl.Int64, scores, nullable=True, coerce=True),
            "m": pa.Column(pl.Int64, scores, nullable=True, coerce=True),
            "segment": pa.Column(pl.String, pa.Check.isin(segments), nullable=False),
        },
        unique=["customer_id"],
        name=spec.table,
    )


def profile_problems(spec: ProfilesConfig, rows: Iterable[dict[str, Any]]) -> list[str]:
    """What the model finds in `rows`: one line per column and check, with a few values."""
    model = profile_model(spec)
    wanted = list(model.columns)
    frame = pl.DataFrame(
        [{name: row.get(name) for name in wanted} for row in rows],
        schema={
            "customer_id": pl.String,
            "frequency": pl.Int64,
            "monetary": pl.Float64,
            "r": pl.Int64,
            "f": pl.Int64,
            "m": pl.Int64,
            "segment": pl.String,
        },
    )
    if frame.height == 0:
        return []
    failures = validate(model, frame)
    problems = []
    for (column, check), group in failures.group_by(["column", "check"], maintain_order=True):
        values = ", ".join(str(v) for v in group["value"].head(SHOWN).to_list())
        problems.append(f"{group.height} profiles fail {column} {check} (e.g. {values})")
    return problems
