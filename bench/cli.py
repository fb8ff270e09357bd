"""Command-line start-up benchmark: what a user waits for before pipewarden does anything.

Runs, as a user would from the shell, `pipewarden --help` and `pipewarden status --json` on the
demo warehouse (made once with `pipewarden demo` if the folder has none), `--repeat` times each,
alternating, and prints the medians beside the goals (issue 11: under 0.5 s each; issue 14:
`--help` under 0.3 s). `status` exits 1 when a demo table is over its SLA (the demo has one on
purpose): that is its answer, not a failure. With hyperfine on PATH its figures are printed too.

Run: `.venv/bin/python bench/cli.py [--repeat N] [--folder .pipewarden/demo]`.
"""

import argparse
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

GOALS = {"pipewarden --help": 0.3, "pipewarden status --json": 0.5}


def timed(command: list[str]) -> float:
    began = time.perf_counter()
    done = subprocess.run(command, capture_output=True, check=False)
    elapsed = time.perf_counter() - began
    if done.returncode not in (0, 1):
        raise SystemExit(f"{' '.join(command)} failed: {done.stderr.decode()[-2000:]}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=10)
    parser.add_argument("--folder", type=Path, default=Path(".pipewarden/demo"))
    args = parser.parse_args()
    pipewarden = str(Path(sys.executable).with_name("pipewarden"))
    config = args.folder / "pipewarden.yaml"
    if not config.exists():
        print(f"making the demo warehouse in {args.folder} (once) …", flush=True)
        subprocess.run(
            [pipewarden, "demo", "--folder", str(args.folder)], capture_output=True, check=True
        )
    commands = {
        "pipewarden --help": [pipewarden, "--help"],
        "pipewarden status --json": [pipewarden, "status", "--json", "--config", str(config)],
    }
    for command in commands.values():
        timed(command)  # warm the file cache once, as a user's second call would be
    runs: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(args.repeat):
        for name, command in commands.items():
            runs[name].append(timed(command))
    print(f"{'command':<28} {'median s':>9} {'min s':>7} {'max s':>7}  goal")
    for name, seconds in runs.items():
        median = statistics.median(seconds)
        verdict = "met" if median < GOALS[name] else "NOT met"
        print(
            f"{name:<28} {median:>9.3f} {min(seconds):>7.3f} {max(seconds):>7.3f}  "
            f"< {GOALS[name]} s: {verdict}"
        )
    hyperfine = shutil.which("hyperfine")
    if hyperfine:
        subprocess.run(
            [
                hyperfine,
                "--warmup",
                "1",
                "--runs",
                str(args.repeat),
                "-i",
                "--style",
                "basic",
                *(" ".join(c) for c in commands.values()),
            ],
            check=False,
        )


if __name__ == "__main__":
    main()
