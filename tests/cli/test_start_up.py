"""A command's start: the collector is held off while it imports, then resumes as before."""

import gc
import subprocess
import sys
import tomllib
from pathlib import Path

from typer.testing import CliRunner

from pipewarden.cli.main import app

_RUN = (
    "import atexit, gc, sys\n"
    "from pipewarden.cli.main import main\n"
    "atexit.register(lambda: print('gc:', *gc.get_threshold(), gc.get_freeze_count(),"
    " file=sys.stderr))\n"
    "sys.argv = ['pipewarden', *sys.argv[1:]]\n"
    "main()\n"
)


def test_a_command_freezes_its_start_and_collects_as_before_afterwards(tmp_path):
    """`pipewarden status` in a fresh interpreter, as a user runs it: the heap built while
    starting is frozen and the default thresholds are back for the command's own work."""
    config = tmp_path / "pipewarden.yaml"
    config.write_text(
        f"warehouse: {{url: 'sqlite:///{tmp_path / 'w.db'}'}}\nsources: {{}}\ntables: {{}}\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", _RUN, "status", "--json", "--config", str(config)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    (line,) = [x for x in done.stderr.splitlines() if x.startswith("gc:")]
    *threshold, frozen = map(int, line.split()[1:])
    assert tuple(threshold) == gc.get_threshold()  # this test process's are the defaults
    assert frozen > 10_000


def test_the_app_run_in_process_leaves_the_collector_alone(tmp_path):
    """Without `main` (a test, an embedding program) nothing is deferred nor frozen."""
    before = gc.get_threshold(), gc.get_freeze_count()
    config = tmp_path / "pipewarden.yaml"
    config.write_text(
        f"warehouse: {{url: 'sqlite:///{tmp_path / 'w.db'}'}}\nsources: {{}}\ntables: {{}}\n"
    )
    result = CliRunner().invoke(app, ["status", "--json", "--config", str(config)])
    assert result.exit_code == 0, result.output
    assert (gc.get_threshold(), gc.get_freeze_count()) == before


def test_the_installed_command_starts_through_main():
    """The `pipewarden` script calls `main` (which defers the collector), not the bare app."""
    pyproject = Path(__file__).resolve().parents[2] / "pyproject.toml"
    scripts = tomllib.loads(pyproject.read_text())["project"]["scripts"]
    assert scripts["pipewarden"] == "pipewarden.cli.main:main"
