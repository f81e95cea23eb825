"""Annotation templates: what renders, what is reported missing, what is refused."""

from __future__ import annotations

import pytest

from seismo.errors import InvalidInput
from seismo.notify import Template, render_annotations

LABELS = {"host": "web-1", "alertname": "HighCPU"}


@pytest.mark.parametrize(
    ("source", "value", "text", "missing"),
    [
        ("plain text", 1.0, "plain text", ()),
        ("", 1.0, "", ()),
        ("CPU {{ $value }}%", 93.5, "CPU 93.5%", ()),
        ("{{$value}}", 90.0, "90", ()),
        ("{{ $value }}", 1e21, "1e+21", ()),
        ("{{ $value }}", float("nan"), "NaN", ()),
        ("{{ $value }}", float("-inf"), "-Inf", ()),
        ("on {{ $labels.host }}", None, "on web-1", ()),
        ("{{ .Labels.host }} {{ .Value }}", 2.0, "web-1 2", ()),
        ("{{ $labels }}", None, '{alertname="HighCPU", host="web-1"}', ()),
        ("{{ $value | humanize }}", 1234567.0, "1.235M", ()),
        ("{{ $value | humanize }}", 0.00123, "1.23m", ()),
        ("{{ $value | humanize }}", 0.0, "0", ()),
        ("{{ $value | humanizePercentage }}", 0.1234, "12.34%", ()),
        ("a {{- $labels.host -}} b", None, "aweb-1b", ()),
        ("{{ $labels.region }}!", 1.0, "!", ("$labels.region",)),
        ("{{ $value }}/{{ $value }}", None, "/", ("$value",)),
        ("{{ $externalURL }}x", 1.0, "x", ("$externalURL",)),
        ("literal }} braces {", 1.0, "literal }} braces {", ()),
        ("<b>{{ $labels.host }}</b>", 1.0, "<b>web-1</b>", ()),
    ],
)
def test_render(source: str, value: float | None, text: str, missing: tuple[str, ...]) -> None:
    rendered = Template(source).render(LABELS, value)
    assert rendered.text == text
    assert rendered.missing == missing


def test_label_values_are_inserted_verbatim_never_evaluated() -> None:
    rendered = Template("{{ $labels.host }}").render({"host": "{{ $value }}"}, 1.0)
    assert rendered.text == "{{ $value }}"


@pytest.mark.parametrize(
    ("source", "reason", "column"),
    [
        ("CPU {{ $value", "never closed", 5),
        ("{{ }}", "empty", 1),
        ("{{- }}", "empty", 1),
        ("x {{ host }}", "'host' is not supported", 3),
        ("{{ $labels. }}", "is not a label name", 1),
        ("{{ $labels.a-b }}", "'a-b' is not a label name", 1),
        ("{{ $labels.host.x }}", "is not a label name", 1),
        ("{{ $value | upper }}", "unknown function 'upper'", 1),
        ("{{ $labels.host | humanize }}", "functions apply to $value only", 1),
        ("{{ $value | humanize | humanize }}", "only one function", 1),
        ("{{ {{ $value }}", "inside", 1),
        ('{{ printf "%.2f" $value }}', "not supported", 1),
        ("{{/* comment */}}", "not supported", 1),
    ],
)
def test_malformed_templates_are_refused_naming_field_and_column(
    source: str, reason: str, column: int
) -> None:
    with pytest.raises(InvalidInput) as caught:
        Template(source, field="annotations.summary")
    error = caught.value
    assert reason in error.message
    assert error.message.startswith("annotations.summary: ")
    assert error.field == "annotations.summary"
    assert error.detail["column"] == column
    assert error.to_dict()["field"] == "annotations.summary"


def test_render_annotations_renders_all_and_reports_what_was_missing() -> None:
    annotations = {"summary": "CPU {{ $value }}% on {{ $labels.host }}",
                   "runbook": "https://runbooks.example/{{ $labels.service }}"}
    rendered, missing = render_annotations(annotations, LABELS, 97.25)
    assert rendered == {"summary": "CPU 97.25% on web-1", "runbook": "https://runbooks.example/"}
    assert missing == ["runbook: $labels.service"]


def test_render_annotations_names_the_bad_annotation() -> None:
    with pytest.raises(InvalidInput) as caught:
        render_annotations({"ok": "x", "summary": "{{ $value"}, LABELS, 1.0,
                           field="rules[2].annotations")
    assert caught.value.field == "rules[2].annotations.summary"
