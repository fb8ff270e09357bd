"""dashboards/prometheus-rules.yml is valid and its alerts fire as its unit tests say."""

import subprocess
from pathlib import Path

from tests.serve.support import prometheus_tool

DASHBOARDS = Path(__file__).resolve().parents[2] / "dashboards"


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [prometheus_tool("promtool"), *args],
        cwd=DASHBOARDS,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_the_rules_pass_promtool_check():
    done = promtool("check", "rules", "prometheus-rules.yml")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS: 3 rules found" in done.stdout


def test_the_rules_pass_their_unit_tests():
    done = promtool("test", "rules", "prometheus-rules.test.yml")
    assert done.returncode == 0, done.stdout + done.stderr
