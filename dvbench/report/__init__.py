"""Reports from finished studies and model comparisons: plots, markdown, exported configs.

``report`` reads what ``search`` wrote (the study's storage and tables); it never runs a
search, trains or measures. :func:`write_report` makes a study's report folder,
:func:`write_comparison` shows a comparison that :func:`dvbench.evaluate.compare_models`
measured, :func:`export_trial` writes a trial's config.
"""

from dvbench.report.compare import (
    comparison_table,
    get_comparison_info,
    write_comparison,
)
from dvbench.report.data import ReportData, load_report_data
from dvbench.report.export import create_from_file, export_trial
from dvbench.report.markdown import pareto_table, render_report
from dvbench.report.plots import (
    HypervolumeInfo,
    ImportanceInfo,
    ParetoFrontInfo,
    PlotPoint,
    get_hypervolume_info,
    get_importance_info,
    get_pareto_front_info,
)
from dvbench.report.writer import ReportFiles, write_report

__all__ = [
    "HypervolumeInfo",
    "ImportanceInfo",
    "ParetoFrontInfo",
    "PlotPoint",
    "ReportData",
    "ReportFiles",
    "comparison_table",
    "create_from_file",
    "export_trial",
    "get_comparison_info",
    "get_hypervolume_info",
    "get_importance_info",
    "get_pareto_front_info",
    "load_report_data",
    "pareto_table",
    "render_report",
    "write_comparison",
    "write_report",
]
