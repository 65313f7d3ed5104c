"""The search space: what a search varies and measures, read from a YAML file.

A room below ``search``, ``calibrate`` and ``evaluate`` (it imports none of them): every room
that needs a space reads it here. Modules by job: ``definition`` (:class:`SearchSpace`, and
loading and validating a space file), ``knobs`` (a knob's range and how knob values become a
:class:`~dvbench.models.DualViTConfig`), ``sections`` (the objectives, constraints, training
and profiling sections), ``device`` (a space's device profile), ``rungs`` (multi-fidelity:
the rungs and the promotion rule), ``repeats`` (which candidates get more seeds),
``prefilter`` (the training-free pre-filter's setting and rule), ``export`` (a space written
back as the YAML that loads to it). The built-in spaces are the top-level ``search_spaces/``,
installed as the package ``dvbench.space.builtin``.
"""

from __future__ import annotations

from dvbench._lazy import lazy_names

# Names resolve on first use (PEP 562): finding the built-in spaces
# (``dvbench.space.builtin``, what ``dvbench search --help`` lists) imports no torch or Optuna.
_WHERE = {
    "SearchSpace": "definition", "hypervolume_reference": "definition",
    "list_spaces": "definition", "load_space": "definition", "parse_space": "definition",
    "space_path": "definition",
    "Objective": "sections", "parse_objectives_option": "sections",
}  # fmt: skip
__all__ = [
    "Objective",
    "SearchSpace",
    "hypervolume_reference",
    "list_spaces",
    "load_space",
    "parse_objectives_option",
    "parse_space",
    "space_path",
]
__getattr__, __dir__ = lazy_names(__name__, _WHERE, globals())
