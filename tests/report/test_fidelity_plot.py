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
    info = get_fidelity_info(signals, {"space": "s", "target_epochs": 15, "seed_to_seed_tau": -0.1})
    drawn = {p.label: p.tau for p in info.points}
    assert drawn == {"good": 0.5, "inverted": -0.4, "free": 0.1}
    assert info.ceiling == -0.1
