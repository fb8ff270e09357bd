"""Command-line benchmark: what a user waits for, measured from the shell as the user meets it.

- `pipewarden --help` and `pipewarden status --json` on the demo warehouse (made once with
  `pipewarden demo` if the folder has none); goals: `--help` under 0.3 s (issue 14), `status`
  under 0.5 s (issue 11). `status` exits 1 when a demo table is over its SLA (the demo has one on
  purpose): that is its answer, not a failure.
- `pipewarden sync` of a 10,000-row delta of a PostgreSQL → PostgreSQL `orders` table, the whole
  command, beside the floor run as a script of its own (bench/sync_floor.py: interpreter, psycopg,
  binary COPY, one upsert) reading the same changed rows into a target of its own; goal: the
  command within 2× the floor (issue 14). Which one runs first alternates.

Each figure is a median over `--repeat` runs of a fresh process, in two measures: wall time, and
the CPU time (user + sys) of the child process, from `resource.getrusage(RUSAGE_CHILDREN)`. The
CPU time is what the command itself costs and is much less sensitive to other work on the
machine, which stretches wall time; the load average is printed beside every figure for that
reason. The goals are for wall time on a quiet machine, where it is close to the CPU time. Beside
them, the floors no command can go below on this machine: the interpreter alone, and the
interpreter importing only the libraries the command cannot start without.

Run: `.venv/bin/python bench/cli.py [--repeat N] [--rows N] [--folder .pipewarden/demo]`.
"""

import argparse
import os
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import orders_databases  # noqa: E402
from bench.sync import make_source, touch_rows  # noqa: E402

BENCH = Path(__file__).resolve().parent
DELTA_ROWS = 10_000
#: What `status` cannot start without: the command line, the database layer, the configuration
#: models and their file format (and `--help` needs the first only). Imported with the garbage
#: collector off: a command holds it off while it starts (pipewarden/cli/start_up.py), so a
#: floor that paid for collections would not be one.
STATUS_IMPORTS = "import gc; gc.disable(); import typer, sqlalchemy, pydantic.main, yaml"
#: What a sync cannot start without, beyond those: the batches, the driver and the COPY format.
SYNC_IMPORTS = f"{STATUS_IMPORTS}, polars, numpy, pyarrow.csv, psycopg"


def run(command: list[str]) -> tuple[float, float]:
    """Wall seconds and CPU seconds (user + sys) of one run of `command` in a child process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    began = time.perf_counter()
    done = subprocess.run(command, capture_output=True, check=False)
    wall = time.perf_counter() - began
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode not in (0, 1):
        raise SystemExit(f"{' '.join(command)} failed: {done.stderr.decode()[-2000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


class Figures:
    """Each measure's runs (wall, CPU) and the 1-minute load average seen after each run."""

    def __init__(self) -> None:
        self.walls: list[float] = []
        self.cpus: list[float] = []
        self.loads: list[float] = []

    def add(self, measured: tuple[float, float]) -> None:
        self.walls.append(measured[0])
        self.cpus.append(measured[1])
        self.loads.append(os.getloadavg()[0])

    @property
    def wall(self) -> float:
        return statistics.median(self.walls)

    @property
    def cpu(self) -> float:
        return statistics.median(self.cpus)

    def row(self, name: str, goal: str) -> str:
        load = f"{min(self.loads):.1f}-{max(self.loads):.1f}"
        return f"  {name:<34} {self.wall:>8.3f} {self.cpu:>8.3f} {load:>10}  {goal}"


HEADER = f"  {'what':<34} {'wall s':>8} {'cpu s':>8} {'load 1m':>10}  goal (medians)"


def verdict(seconds: float, goal: float) -> str:
    return "met" if seconds < goal else "NOT met"


def start_up(pipewarden: str, folder: Path, repeat: int) -> None:
    config = folder / "pipewarden.yaml"
    if not config.exists():
        print(f"making the demo warehouse in {folder} (once) …", flush=True)
        subprocess.run(
            [pipewarden, "demo", "--folder", str(folder)], capture_output=True, check=True
        )
    commands = {
        "python: interpreter alone": ([sys.executable, "-c", "pass"], None),
        "python: imports status needs": ([sys.executable, "-c", STATUS_IMPORTS], None),
        "pipewarden --help": ([pipewarden, "--help"], 0.3),
        "pipewarden status --json": (
            [pipewarden, "status", "--json", "--config", str(config)],
            0.5,
        ),
    }
    for command, _ in commands.values():
        run(command)  # warm the file cache once, as a user's second call would be
    figures = {name: Figures() for name in commands}
    for _ in range(repeat):  # alternating, so a busy spell hits both alike
        for name, (command, _) in commands.items():
            figures[name].add(run(command))
    print(f"\nstart-up, {repeat} runs each\n{HEADER}")
    for name, (_, goal) in commands.items():
        f = figures[name]
        if goal is None:
            print(f.row(name, "(a floor: no command can start faster)"))
        else:
            met = f"wall {verdict(f.wall, goal)}, cpu {verdict(f.cpu, goal)}"
            print(f.row(name, f"< {goal} s: {met}"))


def sync_delta(pipewarden: str, rows: int, repeat: int) -> None:
    """A 10,000-row delta through `pipewarden sync` and through the floor script, alternating."""
    floor_script = [sys.executable, str(BENCH / "sync_floor.py")]
    with orders_databases("bench_cli") as (source, target, floor_target, config):
        print(f"\nmaking a {rows:,}-row source and loading both targets …", flush=True)
        make_source(source, rows)
        command = [pipewarden, "sync", "orders", "--json", "--config", str(config)]
        run(command)
        run([*floor_script, source, floor_target])
        pw, floor, imports = Figures(), Figures(), Figures()
        for r in range(-1, max(repeat, 5)):  # one untimed round first: a checkpoint after the load
            since = touch_rows(source, DELTA_ROWS, rows, r + 1)
            steps: list[tuple[Figures, Callable[[], tuple[float, float]]]] = [
                (floor, lambda s=since: run([*floor_script, source, floor_target, s])),
                (pw, lambda: run(command)),
            ]
            for figures, step in steps if r % 2 else reversed(steps):
                measured = step()
                if r >= 0:
                    figures.add(measured)
            if r >= 0:
                imports.add(run([sys.executable, "-c", SYNC_IMPORTS]))
    print(f"\nsync, a {DELTA_ROWS:,}-row delta of a {rows:,}-row table, whole command\n{HEADER}")
    print(floor.row("floor script (psycopg COPY+upsert)", ""))
    print(imports.row("python: imports sync needs", "(no sync command can start faster)"))
    wall_ratio, cpu_ratio = pw.wall / floor.wall, pw.cpu / floor.cpu
    print(
        pw.row(
            "pipewarden sync",
            f"≤ 2x floor: wall {wall_ratio:.2f}x ({verdict(wall_ratio, 2.0001)}), "
            f"cpu {cpu_ratio:.2f}x ({verdict(cpu_ratio, 2.0001)})",
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=10)
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows of the sync's source")
    parser.add_argument("--folder", type=Path, default=Path(".pipewarden/demo"))
    parser.add_argument("--no-sync", action="store_true", help="start-up figures only")
    args = parser.parse_args()
    pipewarden = str(Path(sys.executable).with_name("pipewarden"))
    print(f"CPUs: {os.cpu_count()}, load average now: {os.getloadavg()}")
    start_up(pipewarden, args.folder, args.repeat)
    if not args.no_sync:
        sync_delta(pipewarden, args.rows, args.repeat)


if __name__ == "__main__":
    main()
