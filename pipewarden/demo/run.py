"""The demo, stage by stage: each stage is the real code path, run over the sample sources."""

import json
import random
import shutil
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from pipewarden.demo.config import write_demo_config
from pipewarden.demo.sources import DemoSources


@dataclass
class DemoRound:
    """What one `pipewarden demo` run did, for the printed summary."""

    round_no: int
    config_path: Path
    source_notes: list[str] = field(default_factory=list)
    syncs: list[list[dict[str, Any]]] = field(default_factory=list)
    warehouse_notes: list[str] = field(default_factory=list)


def _state(folder: Path) -> dict[str, Any]:
    path = folder / "state.json"
    return json.loads(path.read_text()) if path.exists() else {}


def _save_state(folder: Path, state: dict[str, Any]) -> None:
    (folder / "state.json").write_text(json.dumps(state))


def prepare_round(folder: Path, reset: bool) -> tuple[DemoRound, DemoSources]:
    """Create the sources on the first run; on later runs, change them as a day would."""
    if reset and folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True, exist_ok=True)
    state = _state(folder)
    round_no = int(state.get("round", 0)) + 1
    rng = random.Random(20261128 + round_no)
    sources = DemoSources(folder)
    config_path = write_demo_config(folder)
    demo = DemoRound(round_no, config_path)
    now = datetime.now(UTC)
    if round_no == 1:
        counts = sources.create(rng, now - timedelta(hours=1))
        demo.source_notes.append(
            "created sample sources: " + ", ".join(f"{n} {t}" for t, n in counts.items())
        )
    _save_state(folder, {"round": round_no})
    return demo, sources


def change_sources(demo: DemoRound, sources: DemoSources) -> None:
    rng = random.Random(7 * demo.round_no)
    demo.source_notes += sources.change(rng, datetime.now(UTC), demo.round_no)


def edit_warehouse_by_hand(demo: DemoRound, warehouse_url: str) -> None:
    """Someone 'fixes' rows in the warehouse directly: only reconciliation can see it."""
    rng = random.Random(99 + demo.round_no)
    engine = sa.create_engine(warehouse_url)
    with engine.begin() as conn:
        ids = [r[0] for r in conn.execute(sa.text("SELECT order_id FROM orders"))]
        edited = rng.sample(ids, 4)
        conn.execute(
            sa.text("UPDATE orders SET amount = '0.00' WHERE order_id = :id"),
            [{"id": i} for i in edited],
        )
    engine.dispose()
    demo.warehouse_notes.append(
        f"someone set amount = 0.00 by hand in the warehouse for orders {sorted(edited)}"
    )
