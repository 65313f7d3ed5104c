"""Export a searched architecture as a config file every dvbench command and timm accept.

A YAML export holds the plain :class:`~dvbench.models.DualViTConfig` fields at the top level
under a comment block saying where it came from (a YAML document written by PyYAML and
commented out, so a name holding a line break cannot end the comment); a JSON export wraps them as
``{"config": {...}, "source": {...}}``. Both load with :func:`dvbench.models.load_config`, so
``dvbench profile FILE``, ``dvbench train FILE``, ``dvbench.models.create_model(FILE)`` and
``timm.create_model("dualvit_s", **load_config(FILE).to_dict())`` build the same network.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import optuna
import torch.nn as nn
import yaml

from dvbench import safe_yaml
from dvbench.errors import UsageError
from dvbench.files import ensure_folder, write_text_atomic
from dvbench.models import DualViTConfig, create_model
from dvbench.report.data import metric_text
from dvbench.search import is_feasible, recorded_config
from dvbench.search.record import metrics_of, seed_name_of, study_settings

__all__ = ["EXPORT_SUFFIXES", "create_from_file", "export_trial"]

EXPORT_SUFFIXES = (".yaml", ".yml", ".json")


def create_from_file(path: str | Path, **kwargs: Any) -> nn.Module:
    """Build the network an exported (or any Dual-ViT) config file describes."""
    return create_model(Path(path), **kwargs)


def _trial(study: optuna.Study, number: int) -> optuna.trial.FrozenTrial:
    return next(t for t in study.get_trials(deepcopy=False) if t.number == number)


def _source(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> dict[str, Any]:
    settings = study_settings(study) or {}
    return {
        "study": study.study_name,
        "trial": trial.number,
        "seed_name": seed_name_of(trial),
        "state": trial.state.name,
        "feasible": is_feasible(trial),
        "knobs": dict(trial.params),
        "metrics": metrics_of(trial),
        "profile_res": _profile_resolution(settings.get("profile") or {}),
        "command": settings.get("command"),
    }


def _profile_resolution(profile: dict[str, Any]) -> Any:
    return profile.get("resolution", profile.get("res"))  # ``res`` in studies before 0.2


def _commented(text: str) -> str:
    return "".join(f"# {line}\n" if line else "#\n" for line in text.splitlines())


def _yaml_header(source: dict[str, Any], cfg: DualViTConfig) -> str:
    """The comment block over a YAML export: fixed sentences, then where the config came
    from as a YAML document written by the YAML library and commented out line by line.

    Names (seed, knob values, the command) appear only inside that document, where PyYAML
    quotes and escapes them (``allow_unicode=False``: every line break or control character
    becomes an escape), and the study's name as its ``repr`` (escaped alike), so no name can
    end the comment and add keys of its own.
    A metric that is missing or not finite is ``null`` there, never a blank number.
    """
    metrics = source["metrics"]
    recorded = [
        f"{metric_text(m, metrics[m])} {unit}"
        for m, unit in (
            ("params_m", "M params"),
            ("gflops", "GFLOPs at the profiling resolution"),
            ("latency_ms_median", "ms latency"),
            ("top1", "% top-1 (proxy)"),
        )
        if _finite(metrics.get(m))
    ]
    lines = [
        # repr() escapes every character that is not printable, line breaks included
        f"Dual-ViT config exported by dvbench: study {str(source['study'])!r}, "
        f"trial {int(source['trial'])}.",
        f"Recorded: {', '.join(recorded)}." if recorded else "",
        "Over the search's budget: recorded, not trained." if source["feasible"] is False else "",
        "The trial did not complete: its metrics may be partial."
        if source["state"] != "COMPLETE"
        else "",
        f"num_classes is the search's ({int(cfg.num_classes)}); override it when building, "
        "e.g. create_model(FILE, num_classes=1000).",
        "Use: python cli.py profile FILE   |   python cli.py train FILE",
        "     dvbench.models.create_model(FILE)",
        "     timm.create_model('dualvit_s', **dvbench.models.load_config(FILE).to_dict())",
        "Where it came from (YAML):",
    ]
    document = yaml.safe_dump(
        {"source": _finite_or_null(source)},
        sort_keys=False,
        allow_unicode=False,
        width=1_000_000,
        default_flow_style=False,
    )
    return "".join(f"# {line}\n" for line in lines if line) + _commented(document)


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _finite_or_null(value: Any) -> Any:
    """``value`` with every NaN or infinity as None (``null``), for YAML and strict JSON."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): _finite_or_null(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite_or_null(v) for v in value]
    return value


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
        document = {"config": cfg.to_dict(), "source": _finite_or_null(source)}
        text = json.dumps(document, indent=2, allow_nan=False) + "\n"
    else:
        fields = yaml.safe_dump(
            cfg.to_dict(), sort_keys=False, default_flow_style=None, allow_unicode=False
        )
        text = _yaml_header(source, cfg) + fields
        if safe_yaml.load(text) != yaml.safe_load(fields):  # the comment holds no keys
            raise AssertionError(f"export: the comment block of {path} is not a comment")
    return write_text_atomic(text, path)  # a link planted at ``path`` is replaced, not followed
