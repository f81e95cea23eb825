"""Burn-rate arithmetic against hand-computed cases (SRE workbook ch. 5, table 5-8)."""

from __future__ import annotations

import pytest

from seismo.slo import WINDOWS, WindowSLI, judge
from seismo.slo.burn import burn_rate, window_sli

OBJECTIVE = 0.999  # error budget 0.1 %: an error rate of 0.1 % burns at 1


def windows(error_rates: dict[str, float | None], slo_window: str = "30d"
            ) -> dict[str, WindowSLI]:
    """Every window at 10,000 events with the given error rate (None: no events)."""
    out = {}
    for name in [w for w, _ in WINDOWS] + [slo_window]:
        rate = error_rates.get(name, 0.0)
        total = 0 if rate is None else 10_000
        good = 0 if rate is None else round(10_000 * (1 - rate))
        out[name] = window_sli(name, good, total, OBJECTIVE)
    return out


def test_burn_rate_is_error_rate_over_budget() -> None:
    assert burn_rate(0.001, 0.999) == 1.0
    assert burn_rate(0.0144, 0.999) == 14.4
    assert burn_rate(0.05, 0.99) == 5.0
    assert burn_rate(0.0, 0.95) == 0.0
    w = window_sli("1h", good=9_856, total=10_000, objective=OBJECTIVE)
    assert (w.sli, round(w.error_rate or 0, 9), w.burn_rate) == (0.9856, 0.0144, 14.4)


def test_no_burn_is_ok_with_the_budget_untouched() -> None:
    verdict = judge(windows({}), "30d")
    assert verdict.status == "ok"
    assert verdict.budget_remaining == 1.0
    assert not any(is_true for _, is_true, _, _ in verdict.conditions)


def test_fast_burn_pages() -> None:
    # 1h: 2 % errors = 20x, 5m: 3 % = 30x → page 1h/5m; 6h at 0.5 % = 5x < 6: no 6h/30m
    # page; 3d at 0.2 % = 2x and 6h 5x → ticket too. 30d: 0.05 % → half the budget left.
    verdict = judge(windows({"1h": 0.02, "5m": 0.03, "30m": 0.03, "6h": 0.005,
                             "3d": 0.002, "30d": 0.0005}), "30d")
    truth = {c.window: (is_true, long, short) for c, is_true, long, short in verdict.conditions}
    assert truth == {"1h/5m": (True, 20.0, 30.0), "6h/30m": (False, 5.0, 30.0),
                     "3d/6h": (True, 2.0, 5.0)}
    assert verdict.status == "breach"
    assert verdict.budget_remaining == pytest.approx(0.5)


def test_six_hour_page_needs_both_windows() -> None:
    # 6h at 0.7 % = 7x and 30m at 0.8 % = 8x: the slower page; 5m back to 0 → no 1h/5m.
    verdict = judge(windows({"1h": 0.02, "5m": 0.0, "30m": 0.008, "6h": 0.007}), "30d")
    truth = {c.window: is_true for c, is_true, _, _ in verdict.conditions}
    assert truth == {"1h/5m": False, "6h/30m": True, "3d/6h": False}
    assert verdict.status == "breach"


def test_slow_burn_tickets() -> None:
    # 3d at 0.2 % = 2x, 6h at 0.15 % = 1.5x: a ticket; 1h and 5m at 1.5x page nobody.
    verdict = judge(windows({"3d": 0.002, "6h": 0.0015, "1h": 0.0015, "30m": 0.0015,
                             "5m": 0.001, "30d": 0.0008}), "30d")
    truth = {c.window: is_true for c, is_true, _, _ in verdict.conditions}
    assert truth == {"1h/5m": False, "6h/30m": False, "3d/6h": True}
    assert verdict.status == "warning"
    assert verdict.budget_remaining == pytest.approx(0.2)


def test_exhausted_budget_wins_over_everything() -> None:
    # 30d at 0.12 % errors = 1.2x the allowed rate: 20 % over budget.
    verdict = judge(windows({"30d": 0.0012, "1h": 0.02, "5m": 0.02}), "30d")
    assert verdict.budget_remaining == pytest.approx(-0.2)
    assert verdict.status == "exhausted"
    exactly = judge(windows({"30d": 0.001}), "30d")  # spent to the last event
    assert (exactly.budget_remaining, exactly.status) == (0.0, "exhausted")


def test_a_threshold_is_exceeded_only_strictly() -> None:
    verdict = judge(windows({"1h": 0.0144, "5m": 0.0144}), "30d")
    assert verdict.conditions[0][1:] == (False, 14.4, 14.4)


def test_no_events_judges_nothing() -> None:
    verdict = judge(windows({w: None for w, _ in WINDOWS} | {"30d": None}), "30d")
    assert verdict.budget_remaining is None and verdict.status == "ok"
    assert [(is_true, long, short) for _, is_true, long, short in verdict.conditions] == \
        [(False, None, None)] * 3
    lone = judge(windows({"5m": None, "1h": 0.5}), "30d")  # 1h burns, 5m has no events
    assert lone.conditions[0][1] is False
