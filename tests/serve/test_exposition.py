"""The exporter's own text exposition says what prometheus_client's would, sample for sample."""

import math

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.parser import text_string_to_metric_families

from pipewarden.serve.exporter import exposition


def _families() -> list:  # type: ignore[type-arg]
    gauge = GaugeMetricFamily("pw_gauge", 'A "gauge"\nwith a back\\slash', labels=["table", "x"])
    gauge.add_metric(['orders "eu"', "a\\b"], 1.5)
    gauge.add_metric(["line\nbreak", ""], math.inf)
    gauge.add_metric(["n", "n"], math.nan)
    gauge.add_metric(["big", "small"], 1e21)
    gauge.add_metric(["neg", "zero"], -0.000001)
    counter = CounterMetricFamily("pw_answers", "Answers", labels=["source"])
    counter.add_metric(["cache"], 3)
    plain = GaugeMetricFamily("pw_up", "Up")
    plain.add_metric([], 1)
    return [gauge, counter, plain]


class _Fixed:
    def collect(self):  # type: ignore[no-untyped-def]
        return _families()


def _parsed(text: str) -> list[tuple[str, str, str, tuple, str]]:  # type: ignore[type-arg]
    return [
        (f.name, f.type, f.documentation, tuple(sorted(s.labels.items())), repr(s.value))
        for f in text_string_to_metric_families(text)
        for s in f.samples
    ]


def test_the_exposition_parses_to_what_prometheus_client_writes() -> None:
    registry = CollectorRegistry()
    registry.register(_Fixed())  # type: ignore[arg-type]

    ours = exposition(_families()).decode()

    assert _parsed(ours) == _parsed(generate_latest(registry).decode())
    assert 'pw_gauge{table="orders \\"eu\\"",x="a\\\\b"} 1.5' in ours
