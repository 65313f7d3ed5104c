"""``report.md``: the answer first, then a study's front, baselines, hypervolume, settings and
how to reproduce it.

:func:`answer_lines` opens the page: per cost budget, which trial to pick, its accuracy with
its standard error, and the trials tied with it; and one line when the accuracy axis does not
resolve the front. :func:`pareto_table` is the front (rows in ``pareto.csv`` order, accuracies
as ``value ± SE``) followed by the baselines; :func:`render_report` assembles the page from
:class:`~dvbench.report.data.ReportData` and the plot files already written beside it. Trial
numbers are Optuna's own (a candidate's number is its first run's; its other runs are listed).
A study whose space changed gets a *Space versions* section. No storage password is written.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from dvbench.metrics import column_header, format_with_error
from dvbench.report.data import (
    ACCURACY_METRICS,
    ReportData,
    metric_name,
    metric_text,
)
from dvbench.report.escape import markdown_cell, markdown_text
from dvbench.report.left_off import copies_text, get_left_off_info, left_off_text
from dvbench.report.plots import ImportanceInfo
from dvbench.search import SPACE_VERSION, display_url, provisional_frame
from dvbench.search.record import DUPLICATE_OF

__all__ = [
    "TABLE_METRICS",
    "answer_lines",
    "knob_table",
    "markdown_table",
    "pareto_table",
    "render_report",
    "reproduce_command",
    "space_file_command",
    "table_metrics",
    "version_table",
]

#: Metric columns a table may show, in order after the objectives (shown when measured);
#: headers and precision are the metrics' own (:mod:`dvbench.metrics`).
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
    return markdown_cell(cell)


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
    text = column_header(metric)
    if metric in data.metrics:
        text += " ↑" if data.directions[data.metrics.index(metric)] == "maximize" else " ↓"
    return text


def table_metrics(data: ReportData) -> list[str]:
    """The objectives, then the other measured metrics of :data:`TABLE_METRICS`."""
    return list(dict.fromkeys([*data.metrics, *(m for m in TABLE_METRICS if data.measured(m))]))


def _cell(metric: str, row: Mapping[str, Any]) -> str:
    """A metric's cell: an accuracy with its standard error (precision follows it)."""
    if metric in ACCURACY_METRICS and f"{metric}_se" in row:
        return format_with_error(row.get(metric), row.get(f"{metric}_se"))
    return metric_text(metric, row.get(metric))


def _trial_cell(row: Mapping[str, Any]) -> str:
    """The candidate's Optuna trial number, and its other runs' when it has more than one."""
    number = row.get("number")
    if number is None or pd.isna(number):
        return ""
    runs = str(row.get("trials") or "").split()
    others = [r for r in runs if r != str(int(number))]
    return f"{int(number)} (runs {', '.join(runs)})" if others else str(int(number))


def _many_seeds(frame: pd.DataFrame) -> bool:
    seeds = pd.to_numeric(frame.get("top1_seeds", pd.Series(dtype=float)), errors="coerce")
    return bool((seeds > 1).any())


def pareto_table(data: ReportData) -> str:
    """The Pareto front (``pareto.csv``'s rows, in order) and then the baselines."""
    metrics = table_metrics(data)
    seeds = _many_seeds(data.front) or _many_seeds(data.baseline_rows)
    header = ["kind", "trial", "name", *(_column_header(m, data) for m in metrics)]
    header += ["seeds"] if seeds else []
    header += ["P(front)", "tied with"]
    rows = []
    for kind, frame in (("front", data.front), ("baseline", data.baseline_rows)):
        for row in frame.to_dict("records"):
            state = row.get("state")
            name = row["name"] if state == "COMPLETE" else f"{row['name']} ({state})"
            if kind == "baseline" and not _same_version(row, data):
                name += f" (space version {row[SPACE_VERSION]})"
            cells = [kind, _trial_cell(row), name, *(_cell(m, row) for m in metrics)]
            if seeds:
                count = row.get("top1_seeds")
                cells.append("" if count is None or pd.isna(count) else str(int(count)))
            chance = row.get("p_front")
            cells.append("" if chance is None or pd.isna(chance) else f"{chance:.2f}")
            cells.append(str(row.get("tied_with") or "") if kind == "front" else "")
            rows.append(cells)
    right = [False, True, False] + [True] * (len(header) - 4) + [False]
    return markdown_table(header, rows, right=right)


def _accuracy_metric(data: ReportData) -> str | None:
    return next((m for m in data.metrics if m in ACCURACY_METRICS), None)


def _budget_metric(data: ReportData) -> str | None:
    return next(
        (m for m, d in zip(data.metrics, data.directions, strict=True)
         if d == "minimize" and m not in ACCURACY_METRICS),
        None,
    )  # fmt: skip


def answer_lines(data: ReportData) -> list[str]:
    """Per cost budget, the trial to pick (the most accurate front member within it), its
    accuracy ± SE and the front members within the budget tied with it; one line when the
    accuracy axis does not resolve the front."""
    accuracy, budget = _accuracy_metric(data), _budget_metric(data)
    front = data.front
    if accuracy is None or budget is None or front.empty:
        return []
    confidence = data.criteria.confidence
    rule = data.criteria.rule
    front = front.sort_values([budget, accuracy], ascending=[True, False]).reset_index(drop=True)
    values = front[[accuracy]].astype(float).to_numpy()
    errors = pd.to_numeric(front.get(f"{accuracy}_se"), errors="coerce").fillna(0.0)
    tied = rule.tied(values, ["maximize"], errors.to_numpy()[:, None])
    rows, last_pick = [], None
    costs = front[budget].astype(float).to_numpy()
    for cost in dict.fromkeys(costs):  # each distinct budget, cheapest first
        within = [i for i in range(len(front)) if costs[i] <= cost]
        pick = max(within, key=lambda i: (values[i, 0], -i))
        if pick == last_pick:
            continue
        last_pick = pick
        row = front.iloc[pick]
        ties = [str(int(front.iloc[i]["number"])) for i in within if i != pick and tied[pick, i]]
        rows.append([
            f"≤ {metric_text(budget, cost)}",
            f"{int(row['number'])} ({row['name']})" if row["name"] != f"trial_{int(row['number'])}"
            else str(int(row["number"])),
            _cell(accuracy, row), ", ".join(ties) or "none",
        ])  # fmt: skip
    header = [f"{metric_name(budget)} budget", "pick trial", _column_header(accuracy, data),
              "tied with it (within the budget)"]  # fmt: skip
    lines = [
        "## The answer",
        "",
        f"For each {metric_name(budget)} budget, the most accurate candidate on the front within "
        f"it, with the standard error of its accuracy; *tied* candidates' accuracies are not told "
        f"apart from it at {confidence:.0%} confidence (any of them will do; the cheaper costs "
        "less).",
        "",
        markdown_table(header, rows, right=[True, True, True, False]),
        "",
    ]
    pairs = [(i, j) for i in range(len(front)) for j in range(i + 1, len(front))]
    resolved = sum(not tied[i, j] for i, j in pairs)
    if pairs and resolved == 0:
        lines.append(
            f"**Front decided by cost: accuracy differences within noise** (no two of its "
            f"{len(front)} members are told apart at {confidence:.0%} confidence); the cheapest "
            "is as good as any measured here."
        )
    elif pairs:
        lines.append(
            f"{resolved} of the front's {len(pairs)} pairs are told apart by accuracy at "
            f"{confidence:.0%} confidence."
        )
    if data.criteria.rule.strict:
        lines.append("The study compares with the strict rule (confidence 0): SEs are shown only.")
    return [*lines, ""]


def _rung_lines(data: ReportData) -> list[str]:
    """How far the candidates got, and the provisional front of those that stopped early."""
    trials = data.trial_rows
    if DUPLICATE_OF in trials.columns:  # a copy of a measured candidate is not another one
        trials = trials[trials[DUPLICATE_OF].isna()]
    labels = [c.split("@", 1)[1] for c in trials.columns if c.startswith("top1@")]
    counts = ", ".join(f"{trials[f'top1@{b}'].notna().sum()} reached {b}" for b in labels)
    lines = [
        f"Successive halving over Pareto ranks: {counts}. The front above is over the "
        "candidates that reached the top rung; accuracies are compared at the same budget. "
        "Candidates that stopped earlier are drawn hollow, labelled with their last budget.",
        "",
    ]
    provisional = provisional_frame(trials, data.criteria)
    if len(provisional):
        metrics = table_metrics(data)
        header = ["budget", "trial", *(_column_header(m, data) for m in metrics)]
        rows = [
            [row["budget"], int(row["number"]), *(_cell(m, row) for m in metrics)]
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
            lines.append(f"- **{markdown_text(name)}**: not compared, it failed ({reason}).")
        elif not _same_version(row, data):
            lines.append(
                f"- **{markdown_text(name)}**: not compared, it was measured under space version "
                f"{row[SPACE_VERSION]} and the front is version {data.front_version} "
                f"(`dvbench search ... --baselines {name}` measures it again)."
            )
        elif name not in data.dominance:
            lines.append(f"- **{markdown_text(name)}**: not compared, it lacks an objective value.")
        elif not data.dominance[name]:
            lines.append(
                f"- **{markdown_text(name)}**: no candidate dominates it (within the noise)."
            )
        else:
            beaten_by = data.dominance[name]
            shown = ", ".join(f"`{n}`" for n in beaten_by[:MAX_NAMES])
            more = f" and {len(beaten_by) - MAX_NAMES} more" if len(beaten_by) > MAX_NAMES else ""
            lines.append(
                f"- **{markdown_text(name)}** is dominated by "
                f"{_plural(len(beaten_by), 'candidate')}: {shown}{more}."
            )
    if not lines:
        return ["The study has no baselines (`dvbench search --baselines NAME,...` adds them)."]
    rule = data.criteria.rule
    noise = (
        "" if rule.strict else
        f" where an accuracy counts as better only by more than {rule.z:.2f} standard errors of "
        f"the difference ({data.criteria.confidence:.0%} confidence)"
    )  # fmt: skip
    return [
        f"A candidate dominates a baseline when it is no worse in every objective "
        f"({objectives}) and better in at least one{noise}.",
        "",
        *lines,
    ]


def _hypervolume_lines(data: ReportData) -> list[str]:
    hv = data.hypervolume
    if hv is None:
        if len(data.metrics) < 2:
            return ["Not defined for a single objective."]
        return ["Not computed: no feasible completed trial, or no usable reference point."]
    parts = [
        f"{metric} = {metric_text(metric, value)} ({source})"
        for metric, value, source in zip(data.metrics, hv.reference, hv.sources, strict=True)
    ]
    interval = f" [{hv.low:.4f}, {hv.high:.4f}]" if hv.high > hv.low else ""
    lines = [
        f"**{hv.value:.4f}**{interval} of the box between the reference point and the ideal "
        f"(every axis normalised to 0..1; the interval: 95 % over the accuracies' noise). "
        f"Reference point: {'; '.join(parts)}."
    ]
    if hv.cheapest_share == hv.cheapest_share:
        lines.append(
            f"The cheapest candidate alone holds {hv.cheapest_share:.0%} of it"
            + ("; the hypervolume here measures cost more than accuracy."
               if hv.cheapest_share > 0.9 else ".")
        )  # fmt: skip
    return [" ".join(lines)]


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
        ["dominance rule", _rule_text(data)],
        ["trials requested", str(s.get("n_trials", ""))],
        ["proxy training", _train_text(data)],
        ["accuracy axis", accuracy_axis or ""],
        ["costs", costs],
        ["latency predicted for", _device_profile_text(s.get("device_profile"))],
        ["device", str(s.get("device", ""))],
        ["machine", str(s.get("machine", ""))],
        ["versions", versions],
    ]
    return [row for row in rows if row[1]]


def _device_profile_text(record: Any) -> str:
    """The device a study's ``latency_pred_ms`` is predicted for, with the profile's
    held-out (leave-one-out) error: a predicted number is only as good as that."""
    if not isinstance(record, Mapping):
        return ""
    return (
        f"{record.get('label', '?')}: {record.get('model', '?')} model fitted on "
        f"{record.get('samples', '?')} timed candidates of `{record.get('space', '?')}`; "
        f"leave-one-out median error {float(record.get('loo_mdape', float('nan'))):.1f} %, "
        f"Spearman {float(record.get('loo_spearman', float('nan'))):.2f} (predicted, not "
        "measured: `latency_pred_ms`)"
    )


def _rule_text(data: ReportData) -> str:
    settings = data.settings
    if data.criteria.rule.strict:
        text = "strict (exact values)"
    else:
        text = f"noise-aware at {data.criteria.confidence:.0%} confidence"
    repeats = settings.get("repeats")
    if repeats:
        text += f"; up to {repeats['seeds']} seeds where the front is unsure"
    return text


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


def space_file_command(data: ReportData, space_file: str = "space.yaml") -> str:
    """The command that runs this study's space again, from the space file the report writes
    beside itself (the space as the study ran it), into a new study."""
    s = data.settings
    parts = ["python", "cli.py", "search", "--space", space_file,
             "--study-name", f"{data.study_name}_again"]  # fmt: skip
    for option, key in (("--sampler", "sampler"), ("--seed", "seed"), ("--n-trials", "n_trials"),
                        ("--device", "device")):  # fmt: skip
        if s.get(key) is not None:
            parts += [option, str(s[key])]
    if data.seeded:
        parts.append("--seed-official")
    if data.baselines_run:
        parts += ["--baselines", ",".join(data.baselines_run)]
    return shlex.join(parts)


def _reproduce_lines(data: ReportData, space_file: str | None = None) -> list[str]:
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
    lines = ["The command that made it:", "", "```bash", *commands, "```", ""]
    if space_file:
        lines += [
            "The same study again, from the space exactly as it ran (`space.yaml` beside this "
            "page holds every setting it used):",
            "",
            "```bash",
            space_file_command(data, space_file),
            "```",
            "",
        ]
    return lines


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
    space_file: str | None = None,
    knob_effects: Sequence[str] = (),
) -> str:
    """The markdown page. Plots are paths relative to the page; ``front_plots`` maps each
    Pareto-front plot's caption to its file; ``accuracy_axis`` says what the accuracy axis is
    and how well it is known to rank (:func:`~dvbench.report.data.accuracy_axis_text`);
    ``knob_effects``: that section's lines (:func:`~dvbench.report.effects.effects_section`)."""
    counts = (
        f"{_plural(data.count('COMPLETE'), 'completed trial')} ({data.infeasible} over "
        f"budget), {data.count('FAIL')} failed, {_plural(len(data.baseline_rows), 'baseline')}; "
        f"{len(data.front)} on the Pareto front."
    )
    lines = [f"# Study `{data.study_name}`", "", counts, ""]
    answer = answer_lines(data)
    if answer:
        lines += answer
        if accuracy_axis:
            lines += [f"Accuracy axis: {accuracy_axis}.", ""]
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
        left_off = left_off_text(get_left_off_info(data.trials, data.metrics))
        if left_off:  # completed trials the front could not place (non-finite metrics)
            lines += [left_off, ""]
        copies = copies_text(data.trials)
        if copies:  # proposals of a candidate already measured (one row each)
            lines += [copies, ""]
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
    lines += knob_effects
    lines += [
        "## Settings",
        "",
        markdown_table(["setting", "value"], _settings_rows(data, accuracy_axis)),
        "",
    ]
    lines += ["## Reproduce", "", *_reproduce_lines(data, space_file)]
    space_yaml = data.settings.get("space_yaml")
    if space_yaml:
        what = "search space as the study used it"
        if data.changed_space:
            what = f"search space version {data.settings.get('space_version', 1)}, the newest"
        lines += _yaml_details(what, space_yaml)
    return "\n".join(lines)
