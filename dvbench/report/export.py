"""Export a searched architecture as a config file every dvbench command and timm accept.

A YAML export holds the plain :class:`~dvbench.models.DualViTConfig` fields at the top level
under a comment block saying where it came from; a JSON export wraps them as
``{"config": {...}, "source": {...}}``. Both load with :func:`dvbench.models.load_config`, so
``dvbench profile FILE``, ``dvbench train FILE``, ``dvbench.models.create_model(FILE)`` and
``timm.create_model("dualvit_s", **load_config(FILE).to_dict())`` build the same network.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

import optuna
import torch.nn as nn
import yaml

from dvbench.errors import UsageError
from dvbench.files import ensure_folder, write_text_atomic
from dvbench.models import DualViTConfig, create_model
from dvbench.report.data import metric_text
from dvbench.search import STUDY_ATTR, is_feasible, recorded_config
from dvbench.search.record import METRICS_ATTR, SEED_NAME

__all__ = ["EXPORT_SUFFIXES", "create_from_file", "export_trial"]

EXPORT_SUFFIXES = (".yaml", ".yml", ".json")


def create_from_file(path: str | Path, **kwargs: Any) -> nn.Module:
    """Build the network an exported (or any Dual-ViT) config file describes."""
    return create_model(Path(path), **kwargs)


def _trial(study: optuna.Study, number: int) -> optuna.trial.FrozenTrial:
    return next(t for t in study.get_trials(deepcopy=False) if t.number == number)


def _source(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> dict[str, Any]:
    settings = study.user_attrs.get(STUDY_ATTR) or {}
    return {
        "study": study.study_name,
        "trial": trial.number,
        "seed_name": trial.user_attrs.get(SEED_NAME),
        "state": trial.state.name,
        "feasible": is_feasible(trial),
        "knobs": dict(trial.params),
        "metrics": dict(trial.user_attrs.get(METRICS_ATTR) or {}),
        "profile_res": _profile_resolution(settings.get("profile") or {}),
        "command": settings.get("command"),
    }


def _profile_resolution(profile: dict[str, Any]) -> Any:
    return profile.get("resolution", profile.get("res"))  # ``res`` in studies before 0.2


def _yaml_header(source: dict[str, Any], cfg: DualViTConfig, path: Path) -> str:
    metrics = source["metrics"]
    recorded = [
        f"{metric_text(m, metrics[m])} {unit}"
        for m, unit in (
            ("params_m", "M params"),
            ("gflops", f"GFLOPs at {source['profile_res']} px"),
            ("latency_ms_median", "ms latency"),
            ("top1", "% top-1 (proxy)"),
        )
        if metrics.get(m) is not None
    ]
    knobs = " ".join(f"{k}={v}" for k, v in source["knobs"].items())
    seed = f" ({source['seed_name']})" if source["seed_name"] else ""
    lines = [
        f"Dual-ViT config exported by dvbench: study {source['study']!r}, "
        f"trial {source['trial']}{seed}.",
        f"Recorded: {', '.join(recorded)}." if recorded else "",
        "Over the search's budget: recorded, not trained." if source["feasible"] is False else "",
        f"The trial ended {source['state']}: its metrics may be partial."
        if source["state"] != "COMPLETE"
        else "",
        *(textwrap.wrap(f"Knobs: {knobs}", 96, subsequent_indent="  ") if knobs else []),
        f"Study command: {source['command']}" if source["command"] else "",
        f"num_classes is the search's ({cfg.num_classes}); override it when building, e.g. "
        "create_model(FILE, num_classes=1000).",
        f"Use: python cli.py profile {path.name}   |   python cli.py train {path.name}",
        f"     dvbench.models.create_model({path.name!r})",
        f"     timm.create_model('dualvit_s', **dvbench.models.load_config({path.name!r})"
        ".to_dict())",
    ]
    return "".join(f"# {line}\n" for line in lines if line)


def export_trial(study: optuna.Study, number: int, path: str | Path) -> Path:
    """Write trial ``number``'s config to ``path`` (``.yaml``/``.yml`` or ``.json``)."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in EXPORT_SUFFIXES:
        raise UsageError(f"out: {path} must end in {', '.join(EXPORT_SUFFIXES)}")
    if path.is_dir() and not path.is_symlink():
        raise UsageError(f"out: {path} is a folder; give a file name ending in .yaml or .json")
    if not path.parent.is_dir():
        raise UsageError(f"out: folder {path.parent} does not exist")
    ensure_folder(path.parent, "out: folder")
    cfg = recorded_config(study, number)  # the one rule (also study:NAME:TRIAL's)
    source = _source(study, _trial(study, number))
    if suffix == ".json":
        text = json.dumps({"config": cfg.to_dict(), "source": source}, indent=2) + "\n"
    else:
        fields = yaml.safe_dump(cfg.to_dict(), sort_keys=False, default_flow_style=None)
        text = _yaml_header(source, cfg, path) + fields
    return write_text_atomic(text, path)  # a link planted at ``path`` is replaced, not followed
