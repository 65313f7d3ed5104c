"""The fidelity plot draws every signal with a finite tau, the negative ones included."""

from __future__ import annotations

import math

import pandas as pd

from dvbench.report.fidelity import get_fidelity_info


def test_negative_and_nan_taus():
    signals = pd.DataFrame(
        {
            "signal": ["good", "inverted", "broken", "free"],
            "kind": ["proxy"] * 4,
            "seconds_per_candidate": [0.1, 0.2, 0.3, 0.0],
            "kendall_tau": [0.5, -0.4, math.nan, 0.1],
            "kendall_low": [0.2, -0.7, math.nan, -0.2],
            "kendall_high": [0.8, -0.1, math.nan, 0.4],
        }
    )
    summary = {"space": "s", "target_epochs": 15, "seed_to_seed_tau": -0.1}
    info = get_fidelity_info(signals, summary)
    drawn = {p.label: p.tau for p in info.points}
    assert drawn == {"good": 0.5, "inverted": -0.4, "free": 0.1}
    assert info.seed_to_seed == -0.1 and info.ceiling is None  # no ICC: no expected ceiling
    summary.update(icc=0.5, expected_tau_ceiling_seed_mean=0.6)
    info = get_fidelity_info(signals, summary)
    assert info.ceiling == 0.6 and "target ICC 0.50" in info.subtitle


def test_the_plot_legend_names_both_reference_lines(tmp_path):
    """Both reference lines are in the legend (the ceiling was once drawn unnamed)."""
    from dvbench.report.fidelity import draw_fidelity

    signals = pd.DataFrame({
        "signal": ["a", "b"], "kind": ["proxy", "rung"], "seconds_per_candidate": [0.01, 50.0],
        "kendall_tau": [0.2, 0.5], "kendall_low": [0.0, 0.3], "kendall_high": [0.4, 0.7],
    })  # fmt: skip
    summary = {"space": "s", "target_epochs": 15, "seed_to_seed_tau": 0.3, "icc": 0.5,
               "expected_tau_ceiling_seed_mean": 0.6}  # fmt: skip
    info = get_fidelity_info(signals, summary)
    path = draw_fidelity(info, tmp_path / "fidelity.png")
    assert path.stat().st_size > 0
    from dvbench.report import fidelity as module

    labels: list[str] = []
    real = module._save

    def keep(figure, where):
        labels.extend(t.get_text() for t in figure.axes[0].get_legend().get_texts())
        return real(figure, where)

    module._save = keep
    try:
        draw_fidelity(info, tmp_path / "again.png")
    finally:
        module._save = real
    assert any("expected tau (0.60)" in label for label in labels)
    assert any("seed-to-seed tau (0.30)" in label for label in labels)
