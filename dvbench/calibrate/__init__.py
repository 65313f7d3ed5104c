"""The fidelity benchmark: how far can a search's accuracy axis be trusted?

It samples candidates from a search space, trains them along a ladder of budgets with several
seeds, scores every cheap signal a search could rank them by, and measures how reliable the
target itself is. This room sits above ``search`` (it reads spaces) and ``evaluate`` (it
trains through the Evaluator); ``cli`` and the benchmarks call it, nothing else does.

- :func:`calibrate` runs the measurements (resumable, shardable; ``_run``);
- :func:`summarize_calibration` / :func:`save_calibration` make the tables (``_summary``);
- :func:`icc`, :func:`rank_agreement`, :func:`expected_tau_ceiling`,
  :func:`paired_tau_difference` are the statistics (``_stats``).
"""

from dvbench.calibrate._plan import RECORDS_FILE, CalibrationPlan
from dvbench.calibrate._run import (
    calibrate,
    candidates_of,
    read_records,
    split_test,
)
from dvbench.calibrate._summary import (
    Calibration,
    reliability_table,
    save_calibration,
    summarize_calibration,
)
from dvbench.stats.reliability import (
    RankAgreement,
    Reliability,
    accuracy_standard_error,
    expected_tau_ceiling,
    icc,
    paired_tau_difference,
    rank_agreement,
    top_overlap,
)

__all__ = [
    "RECORDS_FILE",
    "Calibration",
    "CalibrationPlan",
    "RankAgreement",
    "Reliability",
    "accuracy_standard_error",
    "calibrate",
    "expected_tau_ceiling",
    "icc",
    "paired_tau_difference",
    "rank_agreement",
    "read_records",
    "reliability_table",
    "candidates_of",
    "save_calibration",
    "split_test",
    "summarize_calibration",
    "top_overlap",
]
