"""``report.md``: a study's front, baselines, hypervolume, settings and how to reproduce it.

:func:`pareto_table` is the front (rows in ``pareto.csv`` order) followed by the baselines;
:func:`render_report` assembles the page from :class:`~dvbench.report.data.ReportData` and the
plot files already written beside it. A study whose space changed gets a *Space versions*
section, and the page says which version the front is made of. No storage password is
written: commands are shown with it masked.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from dvbench.report.data import (
    ACCURACY_METRICS,
    ReportData,
    metric_name,
    metric_text,
    metric_unit,
)
from dvbench.report.plots import ImportanceInfo
from dvbench.search.storage import display_url
from dvbench.search.tables import SPACE_VERSION

__all__ = [
    "TABLE_METRICS",
    "knob_table",
    "markdown_table",
    "pareto_table",
    "render_report",
    "reproduce_command",
    "table_metrics",
    "version_table",
]

#: Metric columns a table may show, in order after the objectives (shown when measured).
TABLE_METRICS = (
    "top1",
    "top5",
    "params_m",
    "gflops",
    "latency_ms_median",
    "throughput_img_s",
    "peak_mem_mb",
)
MAX_NAMES = 12  # longest list of dominating candidates written out in full


def _escape(cell: Any) -> str:
    return str(cell).replace("|", "\\|").replace("\n", " ")


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def markdown_table(
    header: Sequence[str], rows: Sequence[Sequence[Any]], *, right: Sequence[bool] | None = None
) -> str:
    """A GitHub-flavoured markdown table; ``right`` marks right-aligned (numeric) columns."""
    right = list(right) if right is not None else [False] * len(header)
    rule = ["---:" if r else "---" for r in right]
    lines = [header, rule, *rows]
    return "\n".join("| " + " | ".join(_escape(c) for c in line) + " |" for line in lines)


def _column_header(metric: str, data: ReportData) -> str:
    name, unit = metric_name(metric), metric_unit(metric)
    text = name if unit == name else f"{name} ({unit})"
    if metric in data.metrics:
        text += " ↑" if data.directions[data.metrics.index(metric)] == "maximize" else " ↓"
    return text


def table_metrics(data: ReportData) -> list[str]:
    """The objectives, then the other measured metrics of :data:`TABLE_METRICS`."""
    return list(dict.fromkeys([*data.metrics, *(m for m in TABLE_METRICS if data.measured(m))]))


def pareto_table(data: ReportData) -> str:
    """The Pareto front (``pareto.csv``'s rows, in order) and then the baselines."""
    metrics = table_metrics(data)
    header = ["kind", "trial", "name", *(_column_header(m, data) for m in metrics)]
    rows = []
    for kind, frame in (("front", data.front), ("baseline", data.baseline_rows)):
        for row in frame.to_dict("records"):
            number = row.get("number")
            state = row.get("state")
            name = row["name"] if state == "COMPLETE" else f"{row['name']} ({state})"
            if kind == "baseline" and not _same_version(row, data):
                name += f" (space version {row[SPACE_VERSION]})"
            rows.append(
                [
                    kind,
                    "" if pd.isna(number) else int(number),
                    name,
                    *(metric_text(m, row.get(m)) for m in metrics),
                ]
            )
    return markdown_table(header, rows, right=[False, True, False] + [True] * len(metrics))


def _rung_lines(data: ReportData) -> list[str]:
    """How far the candidates got, and the provisional front of those that stopped early."""
    from dvbench.search.tables import provisional_frame

    trials = data.trial_rows
    labels = [c.split("@", 1)[1] for c in trials.columns if c.startswith("top1@")]
    counts = ", ".join(f"{trials[f'top1@{b}'].notna().sum()} reached {b}" for b in labels)
    lines = [
        f"Successive halving over Pareto ranks: {counts}. The front above is over the "
        "candidates that reached the top rung; accuracies are compared at the same budget. "
        "Candidates that stopped earlier are drawn hollow, labelled with their last budget.",
        "",
    ]
    provisional = provisional_frame(trials, data.metrics, data.directions)
    if len(provisional):
        metrics = table_metrics(data)
        header = ["budget", "trial", *(_column_header(m, data) for m in metrics)]
        rows = [
            [row["budget"], int(row["number"]), *(metric_text(m, row.get(m)) for m in metrics)]
            for row in provisional.to_dict("records")
        ]
        lines += [
            "Provisional front (`provisional.csv`): for each lower rung, the non-dominated "
            "candidates among those that stopped there, at that rung's accuracy.",
            "",
            markdown_table(header, rows, right=[False, True] + [True] * len(metrics)),
        ]
    return lines


def _same_version(row: Mapping[str, Any], data: ReportData) -> bool:
    version = row.get(SPACE_VERSION)
    return data.front_version is None or pd.isna(version) or version == data.front_version


def version_table(data: ReportData) -> str:
    """One row per space version: its trials, what changed from the version before, when."""
    rows = [
        [
            version.number,
            data.version_trials(version.number),
            "; ".join(version.changed)
            or ("(the study's first space)" if version.number == 1 else ""),
            version.recorded or "",
        ]
        for version in data.versions
    ]
    return markdown_table(
        ["version", "trials", "changed from the version before", "recorded"],
        rows,
        right=[True, True, False, False],
    )


def _version_lines(data: ReportData) -> list[str]:
    lines = [
        f"The study's space was changed with `--allow-space-change`. Its front, plots, "
        f"hypervolume and baseline comparisons hold the trials of space version "
        f"{data.front_version} only, so that no front mixes two spaces' constraints; "
        "`trials.csv` has every trial and the version it ran under (`space_version`).",
        "",
        version_table(data),
        "",
    ]
    for version in data.versions[:-1]:
        if version.space_yaml:
            lines += _yaml_details(f"space version {version.number}", version.space_yaml)
    return lines


def _yaml_details(summary: str, text: str) -> list[str]:
    return [
        f"<details><summary>{summary}</summary>",
        "",
        "```yaml",
        str(text).rstrip(),
        "```",
        "",
        "</details>",
        "",
    ]


def knob_table(data: ReportData) -> str | None:
    """The knob values of the front's trials (None when the study has no knob columns)."""
    knobs = [c for c in data.front.columns if str(c).startswith("knob.")]
    if data.front.empty or not knobs:
        return None
    header = ["trial", "name", *(k.removeprefix("knob.") for k in knobs)]
    rows = [
        [int(r["number"]), r["name"], *(_value(r[k]) for k in knobs)]
        for r in data.front.to_dict("records")
    ]
    return markdown_table(header, rows, right=[True, False] + [True] * len(knobs))


def _value(value: Any) -> str:
    if value is None or (isinstance(value, float) and value != value):
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return f"{value:g}" if isinstance(value, float) else str(value)


def _dominance_lines(data: ReportData) -> list[str]:
    lines = []
    objectives = ", ".join(f"{m} ({d})" for m, d in zip(data.metrics, data.directions, strict=True))
    for row in data.baseline_rows.to_dict("records"):
        name = row["name"]
        if row.get("state") != "COMPLETE":
            reason = row.get("fail_reason") or "no reason recorded"
            lines.append(f"- **{name}**: not compared, it failed ({reason}).")
        elif not _same_version(row, data):
            lines.append(
                f"- **{name}**: not compared, it was measured under space version "
                f"{row[SPACE_VERSION]} and the front is version {data.front_version} "
                f"(`dvbench search ... --baselines {name}` measures it again)."
            )
        elif name not in data.dominance:
            lines.append(f"- **{name}**: not compared, it lacks an objective value.")
        elif not data.dominance[name]:
            lines.append(f"- **{name}**: no candidate dominates it.")
        else:
            beaten_by = data.dominance[name]
            shown = ", ".join(f"`{n}`" for n in beaten_by[:MAX_NAMES])
            more = f" and {len(beaten_by) - MAX_NAMES} more" if len(beaten_by) > MAX_NAMES else ""
            lines.append(
                f"- **{name}** is dominated by {_plural(len(beaten_by), 'candidate')}: "
                f"{shown}{more}."
            )
    if not lines:
        return ["The study has no baselines (`dvbench search --baselines NAME,...` adds them)."]
    return [
        f"A candidate dominates a baseline when it is no worse in every objective "
        f"({objectives}) and better in at least one.",
        "",
        *lines,
    ]


def _hypervolume_lines(data: ReportData) -> list[str]:
    if data.hypervolume is None:
        if len(data.metrics) < 2:
            return ["Not defined for a single objective."]
        return ["Not computed: no feasible completed trial, or no usable reference point."]
    parts = []
    for metric, direction, value in zip(
        data.metrics, data.directions, data.reference_point, strict=True
    ):
        factor = "1.1" if direction == "minimize" else "0.9"
        source = (
            "set by the space"
            if metric in data.fixed_reference
            else f"{factor} x the worst feasible value"
        )
        parts.append(f"{metric} = {metric_text(metric, value)} ({source})")
    units = " x ".join(metric_unit(m) for m in data.metrics)
    return [f"**{data.hypervolume:.6g}** ({units}), reference point: {'; '.join(parts)}."]


def _importance_lines(info: ImportanceInfo | None, plot: str | None) -> list[str]:
    if info is None:
        return ["Not computed (`--no-importance`)."]
    if info.skipped:
        return [f"Not computed: {info.skipped}."]
    header = ["parameter", *info.importances]
    rows = [
        [p, *(f"{values[i]:.3f}" for values in info.importances.values())]
        for i, p in enumerate(info.params)
    ]
    lines = [f"![parameter importance]({plot})", ""] if plot else []
    return [*lines, markdown_table(header, rows, right=[False] + [True] * len(info.importances))]


def _settings_rows(data: ReportData, accuracy_axis: str | None = None) -> list[list[str]]:
    s = data.settings
    objectives = ", ".join(f"{o['metric']} ({o['direction']})" for o in s.get("objectives", []))
    constraints = ", ".join(f"{k} = {v:g}" for k, v in (s.get("constraints") or {}).items())
    sampler = str(s.get("sampler", ""))
    if s.get("population_size"):
        sampler += f" (population {s['population_size']})"
    profile = s.get("profile") or {}
    costs = f"counted at {data.resolution or '?'} px"
    if profile.get("latency") or data.measured("latency_ms_median"):
        costs += f"; latency at batch {data.batch_size}"
        if profile.get("threads"):
            costs += f", {profile['threads']} threads"
    versions = ", ".join(f"{k} {v}" for k, v in (s.get("versions") or {}).items())
    space = f"`{s.get('space', '')}`" + (f" ({s['space_file']})" if s.get("space_file") else "")
    if data.changed_space:
        space += f", version {s.get('space_version', 1)}"
    rows = [
        ["space", space],
        ["objectives", objectives],
        ["constraints", constraints or "none"],
        ["sampler", sampler],
        ["seed", str(s.get("seed", ""))],
        ["trials requested", str(s.get("n_trials", ""))],
        ["proxy training", _train_text(data)],
        ["accuracy axis", accuracy_axis or ""],
        ["costs", costs],
        ["device", str(s.get("device", ""))],
        ["machine", str(s.get("machine", ""))],
        ["versions", versions],
    ]
    return [row for row in rows if row[1]]


#: Training settings the report names (the study records them all).
_TRAIN_SHOWN = ("epochs", "max_steps", "time_limit_s", "batch_size", "lr", "train_samples")


def _train_text(data: ReportData) -> str:
    if not any(m in (*ACCURACY_METRICS, "train_time_s") for m in data.metrics):
        return "none (cost-only objectives)"
    train = dict(data.settings.get("train") or {})
    source = train.get("data", "?")
    res = train.get("resolution", train.get("res", "?"))
    rest = ", ".join(f"{k} = {train[k]}" for k in _TRAIN_SHOWN if train.get(k) is not None)
    return f"{source} at {res} px" + (f"; {rest}" if rest else "")


def reproduce_command(data: ReportData) -> str:
    """The command that made the study: the stored one, else one rebuilt from the settings."""
    s = data.settings
    if s.get("command"):
        return _masked(str(s["command"]))
    parts = [
        "python",
        "cli.py",
        "search",
        "--space",
        str(s.get("space_file") or s.get("space")),
        "--study-name",
        data.study_name,
    ]
    for option, key in (
        ("--sampler", "sampler"),
        ("--seed", "seed"),
        ("--n-trials", "n_trials"),
        ("--device", "device"),
    ):
        if s.get(key) is not None:
            parts += [option, str(s[key])]
    return shlex.join(parts)


def _reproduce_lines(data: ReportData) -> list[str]:
    commands = [reproduce_command(data)]
    if data.changed_space and all(version.command for version in data.versions):
        commands = [_masked(str(version.command)) for version in data.versions]
        return [
            "The study ran under each space version in turn (each YAML as shown above):",
            "",
            "```bash",
            *commands,
            "```",
            "",
        ]
    return ["```bash", *commands, "```", ""]


def _masked(command: str) -> str:
    """``command`` with any storage URL's password shown as ``***`` (studies made before
    dvbench masked it when recording)."""
    try:
        return shlex.join(display_url(token) for token in shlex.split(command))
    except ValueError:  # unbalanced quotes: mask the whole line
        return display_url(command)


def render_report(
    data: ReportData,
    *,
    front_plots: Mapping[str, str] | None = None,
    hypervolume_plot: str | None = None,
    importance: ImportanceInfo | None = None,
    importance_plot: str | None = None,
    accuracy_axis: str | None = None,
) -> str:
    """The markdown page. Plots are paths relative to the page; ``front_plots`` maps each
    Pareto-front plot's caption to its file; ``accuracy_axis`` says what the accuracy axis is
    and how well it is known to rank (:func:`~dvbench.report.data.accuracy_axis_text`)."""
    counts = (
        f"{_plural(data.count('COMPLETE'), 'completed trial')} ({data.infeasible} over "
        f"budget), {data.count('FAIL')} failed, {_plural(len(data.baseline_rows), 'baseline')}; "
        f"{len(data.front)} on the Pareto front."
    )
    lines = [f"# Study `{data.study_name}`", "", counts, ""]
    if data.changed_space:
        trials = _plural(data.version_trials(data.front_version or 1), "trial")
        lines += [
            f"The space changed during the study: the front holds the {trials} of space "
            f"version {data.front_version} only (see *Space versions*).",
            "",
        ]
    lines += ["## Pareto front", ""]
    for caption, path in (front_plots or {}).items():
        lines += [f"![{caption}]({path})", ""]
    if data.front.empty:
        lines += ["No feasible completed trial yet.", ""]
    if len(data.front) or len(data.baseline_rows):
        proxy = "; accuracy is the proxy's" if set(data.metrics) & set(ACCURACY_METRICS) else ""
        lines += [
            f"Front rows are `pareto.csv` in order (↑ higher is better, ↓ lower is better{proxy}); "
            "baselines were measured the same way.",
            "",
            pareto_table(data),
            "",
        ]
    if "final" in data.trials.columns:
        lines += ["### Multi-fidelity rungs", "", *_rung_lines(data), ""]
    knobs = knob_table(data)
    if knobs:
        lines += ["### Front architectures (knob values)", "", knobs, ""]
    if data.changed_space:
        lines += ["## Space versions", "", *_version_lines(data)]
    lines += ["## Baselines", "", *_dominance_lines(data), ""]
    lines += ["## Hypervolume", "", *_hypervolume_lines(data), ""]
    if hypervolume_plot:
        lines += [f"![hypervolume]({hypervolume_plot})", ""]
    lines += ["## Parameter importance", "", *_importance_lines(importance, importance_plot), ""]
    lines += [
        "## Settings",
        "",
        markdown_table(["setting", "value"], _settings_rows(data, accuracy_axis)),
        "",
    ]
    lines += ["## Reproduce", "", *_reproduce_lines(data)]
    space_yaml = data.settings.get("space_yaml")
    if space_yaml:
        what = "search space as the study used it"
        if data.changed_space:
            what = f"search space version {data.settings.get('space_version', 1)}, the newest"
        lines += _yaml_details(what, space_yaml)
    return "\n".join(lines)
