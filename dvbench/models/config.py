"""The Dual-ViT configuration: every knob the search varies, validated in one place.

The three official models (``dualvit_s``, ``dualvit_b``, ``dualvit_l``) are exact instances of
:class:`DualViTConfig`; every quirk of the official code (two LayerNorm eps values, the
stage-3 FFN-ratio alternation, five MLP ratios, the token-labeling head) is a field here.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SEMANTIC_POOLS = ("window", "grid")
# timm's ``global_pool`` for Dual-ViT: "token" is the official head (a class token pooled by
# class attention over all final tokens), "" leaves the final features unpooled.
GLOBAL_POOLS = ("token", "")


def _as_tuple(value: Any, name: str, kind: type) -> tuple:
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
        raise ValueError(f"{name}: expected a list, got {value!r}")
    out = []
    for item in value:
        if kind is int:
            if isinstance(item, bool) or not isinstance(item, int):
                if isinstance(item, float) and item.is_integer():
                    item = int(item)
                else:
                    raise ValueError(f"{name}: expected integers, got {item!r}")
        elif kind is float:
            if isinstance(item, bool) or not isinstance(item, (int, float)):
                raise ValueError(f"{name}: expected numbers, got {item!r}")
            item = float(item)
        out.append(item)
    return tuple(out)


def conv_out(size: int, kernel: int, stride: int, padding: int) -> int:
    """Output length of a convolution along one axis (floor, as PyTorch)."""
    return (size + 2 * padding - kernel) // stride + 1


def semantic_grid_size(
    height: int, width: int, pool: str, window: int, grid: int | None
) -> tuple[int, int]:
    """The semantic token grid pooled from a ``height`` x ``width`` stage-1 map.

    The one input-size check of the network: ValueError when the map is smaller than the pool
    window (or grid). The model calls it in ``forward`` (plain ints and strings, so it also
    compiles with TorchScript); :meth:`DualViTConfig.semantic_grid_for` calls it for a size.
    """
    if pool == "window":
        if height < window or width < window:
            raise ValueError(
                f"stage-1 map {height}x{width} is smaller than the semantic pool window "
                f"{window}x{window} (semantic_window); use a larger input or window"
            )
        return height // window, width // window
    assert grid is not None, "semantic_grid: needed with semantic_pool='grid'"
    if height < grid or width < grid:
        raise ValueError(
            f"stage-1 map {height}x{width} is smaller than the semantic grid {grid}x{grid} "
            "(semantic_grid)"
        )
    return grid, grid


@dataclass(frozen=True)
class DualViTConfig:
    """A Dual-ViT network. Defaults are the official ``dualvit_s`` at 224 px.

    Per-stage tuples (``embed_dims``, ``num_heads``, ``depths``) have one entry per stage; the
    number of stages is their length. ``mlp_ratios`` has one entry per stage and optionally
    one more for the class-attention block of the head (the official factories pass five,
    e.g. ``(8, 8, 4, 3, 2)``); with only one per stage the head reuses the last one.
    """

    embed_dims: tuple[int, ...] = (64, 128, 320, 448)
    num_heads: tuple[int, ...] = (2, 4, 10, 14)
    depths: tuple[int, ...] = (3, 4, 6, 3)
    mlp_ratios: tuple[float, ...] = (8, 8, 4, 3, 2)
    stem_hidden_dim: int = 32
    in_chans: int = 3
    num_classes: int = 1000
    # Stages before merging: the first ``dual_stages`` stages run the two pathways side by
    # side (cross-attention); the rest concatenate semantic and pixel tokens.
    dual_stages: int = 2
    # How the semantic tokens are pooled from the stage-1 map: "window" is the official
    # fixed average pool (kernel = stride = ``semantic_window``, so each semantic token
    # summarises window**2 pixel tokens); "grid" pools adaptively to
    # ``semantic_grid`` x ``semantic_grid`` tokens whatever the input size.
    semantic_pool: str = "window"
    semantic_window: int = 7
    semantic_grid: int | None = None
    # Side of the learned query grid (official 8: 64 queries). Queries are resized with
    # bicubic interpolation when the pooled grid differs, as the official code does.
    semantic_query_grid: int = 8
    # Width ratios of the semantic pathway's MLPs: in dual stages (official 4) and in merge
    # stages (official 2).
    semantic_mlp_ratio_dual: float = 4
    semantic_mlp_ratio_merge: float = 2
    # Official quirk: in the stage with this index, every odd block uses mlp_ratio - 1
    # (dualvit_s stage 3 alternates 4, 3, 4, ...). None switches it off.
    ratio_alternation_stage: int | None = 2
    norm_eps: float = 1e-6
    layer_scale_init: float = 1e-6
    drop_path_rate: float = 0.0
    # Dropout on the pooled features before the classifiers (timm's ``drop_rate``).
    drop_rate: float = 0.0
    token_label: bool = True
    global_pool: str = "token"
    # The resolution the model is meant for; used to validate the semantic grid and as the
    # timm default_cfg input size. Any input whose stage-1 map holds one pool window works.
    img_size: int = 224
    name: str | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        for name, kind in (
            ("embed_dims", int),
            ("num_heads", int),
            ("depths", int),
            ("mlp_ratios", float),
        ):
            object.__setattr__(self, name, _as_tuple(getattr(self, name), name, kind))
        # ratios that are whole numbers stay ints so that the config prints as it was given
        object.__setattr__(
            self,
            "mlp_ratios",
            tuple(int(r) if float(r).is_integer() else r for r in self.mlp_ratios),
        )
        self.validate()

    # ----------------------------------------------------------------------------- derived
    @property
    def num_stages(self) -> int:
        return len(self.embed_dims)

    @property
    def class_mlp_ratio(self) -> float:
        return (
            self.mlp_ratios[self.num_stages]
            if len(self.mlp_ratios) > self.num_stages
            else (self.mlp_ratios[-1])
        )

    @property
    def pixel_tokens_per_semantic(self) -> int | None:
        """Compression ratio of the semantic pathway (window pooling only)."""
        return self.semantic_window**2 if self.semantic_pool == "window" else None

    def stage_mlp_ratio(self, stage: int, block: int) -> float:
        ratio = self.mlp_ratios[stage]
        if self.ratio_alternation_stage == stage and block % 2 == 1:
            ratio = ratio - 1
        return ratio

    def stage1_size(self, img_size: int | tuple[int, int]) -> tuple[int, int]:
        """Side of the stage-1 pixel map for an input of this size (stem: two stride-2 convs)."""
        h, w = (img_size, img_size) if isinstance(img_size, int) else img_size
        return (conv_out(conv_out(h, 7, 2, 3), 3, 2, 1), conv_out(conv_out(w, 7, 2, 3), 3, 2, 1))

    def semantic_grid_for(self, img_size: int | tuple[int, int]) -> tuple[int, int]:
        """The semantic token grid for an input size; ValueError when the input is too small."""
        h, w = self.stage1_size(img_size)
        try:
            return semantic_grid_size(
                h, w, self.semantic_pool, self.semantic_window, self.semantic_grid
            )
        except ValueError as exc:
            raise ValueError(f"input {img_size}: {exc}") from None

    def num_semantic_tokens(self, img_size: int | tuple[int, int] | None = None) -> int:
        gh, gw = self.semantic_grid_for(self.img_size if img_size is None else img_size)
        return gh * gw

    # -------------------------------------------------------------------------- validation
    def validate(self) -> None:
        """Raise ValueError naming the field and the reason for an impossible network."""
        n = len(self.embed_dims)
        if n == 0:
            raise ValueError("embed_dims: must not be empty")
        if n < 2:
            raise ValueError("embed_dims: needs at least 2 stages (one dual, one merge)")
        for name in ("num_heads", "depths"):
            if len(getattr(self, name)) != n:
                raise ValueError(
                    f"{name}: has {len(getattr(self, name))} entries but embed_dims has {n} "
                    "(one per stage)"
                )
        if len(self.mlp_ratios) not in (n, n + 1):
            raise ValueError(
                f"mlp_ratios: has {len(self.mlp_ratios)} entries; expected {n} (one per stage) "
                f"or {n + 1} (plus one for the class-attention head)"
            )
        for i, (dim, heads, depth) in enumerate(zip(self.embed_dims, self.num_heads, self.depths)):
            if dim <= 0:
                raise ValueError(f"embed_dims[{i}]: must be positive, got {dim}")
            if heads <= 0:
                raise ValueError(f"num_heads[{i}]: must be positive, got {heads}")
            if dim % heads:
                raise ValueError(
                    f"embed_dims[{i}]: width {dim} is not divisible by num_heads[{i}]={heads}"
                )
            if depth <= 0:
                raise ValueError(f"depths[{i}]: every stage needs at least one block, got {depth}")
        for i, ratio in enumerate(self.mlp_ratios):
            if not ratio > 0:
                raise ValueError(f"mlp_ratios[{i}]: must be positive, got {ratio}")
        if self.ratio_alternation_stage is not None:
            s = self.ratio_alternation_stage
            if isinstance(s, bool) or not isinstance(s, int) or not 0 <= s < n:
                raise ValueError(
                    f"ratio_alternation_stage: must be a stage index in 0..{n - 1} or null, "
                    f"got {s!r}"
                )
            if self.depths[s] > 1 and not self.mlp_ratios[s] > 1:
                raise ValueError(
                    f"mlp_ratios[{s}]: must exceed 1 because ratio_alternation_stage={s} gives "
                    f"odd blocks ratio {self.mlp_ratios[s]} - 1"
                )
        for i, dim in enumerate(self.embed_dims):
            if self.mlp_ratio_hidden(i, dim) <= 0:
                raise ValueError(f"mlp_ratios[{i}]: gives an empty FFN for width {dim}")
        if isinstance(self.dual_stages, bool) or not isinstance(self.dual_stages, int):
            raise ValueError(f"dual_stages: must be an integer, got {self.dual_stages!r}")
        if not 1 <= self.dual_stages <= n - 1:
            raise ValueError(
                f"dual_stages: must be between 1 and {n - 1} (the last stage merges the "
                f"pathways), got {self.dual_stages}"
            )
        for name in ("stem_hidden_dim", "in_chans", "semantic_query_grid", "img_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ValueError(f"{name}: must be a positive integer, got {value!r}")
        if (
            isinstance(self.num_classes, bool)
            or not isinstance(self.num_classes, int)
            or (self.num_classes < 0)
        ):
            raise ValueError(
                f"num_classes: must be a non-negative integer, got {self.num_classes!r}"
            )
        for name in ("semantic_mlp_ratio_dual", "semantic_mlp_ratio_merge"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not value > 0:
                raise ValueError(f"{name}: must be a positive number, got {value!r}")
            if int(min(self.embed_dims) * value) <= 0:
                raise ValueError(f"{name}: {value} gives an empty semantic MLP")
        if not isinstance(self.norm_eps, (int, float)) or not self.norm_eps > 0:
            raise ValueError(f"norm_eps: must be positive, got {self.norm_eps!r}")
        if not isinstance(self.layer_scale_init, (int, float)) or not self.layer_scale_init > 0:
            raise ValueError(
                f"layer_scale_init: must be positive (the official blocks always have layer "
                f"scale), got {self.layer_scale_init!r}"
            )
        for name in ("drop_path_rate", "drop_rate"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 1:
                raise ValueError(f"{name}: must be in [0, 1), got {value!r}")
        if self.global_pool not in GLOBAL_POOLS:
            raise ValueError(
                f"global_pool: must be 'token' (the class-attention head) or '' (none), "
                f"got {self.global_pool!r}"
            )
        if not isinstance(self.token_label, bool):
            raise ValueError(f"token_label: must be true or false, got {self.token_label!r}")
        if self.semantic_pool not in SEMANTIC_POOLS:
            raise ValueError(
                f"semantic_pool: must be one of {', '.join(SEMANTIC_POOLS)}, "
                f"got {self.semantic_pool!r}"
            )
        if self.semantic_pool == "window":
            if self.semantic_grid is not None:
                raise ValueError(
                    "semantic_grid: only used with semantic_pool='grid' (the window pool's "
                    "grid follows from the input size)"
                )
            w = self.semantic_window
            if isinstance(w, bool) or not isinstance(w, int) or w <= 0:
                raise ValueError(f"semantic_window: must be a positive integer, got {w!r}")
        else:
            g = self.semantic_grid
            if isinstance(g, bool) or not isinstance(g, int) or g <= 0:
                raise ValueError(
                    "semantic_grid: must be a positive integer with semantic_pool='grid', "
                    f"got {g!r}"
                )
        try:
            self.semantic_grid_for(self.img_size)
        except ValueError as exc:
            field_name = "semantic_window" if self.semantic_pool == "window" else "semantic_grid"
            raise ValueError(f"{field_name}: at img_size={self.img_size} the {exc}") from None

    def mlp_ratio_hidden(self, stage: int, dim: int) -> int:
        return min(
            int(dim * self.stage_mlp_ratio(stage, b)) for b in range(max(self.depths[stage], 1))
        )

    # ----------------------------------------------------------------------- serialisation
    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            out[f.name] = list(value) if isinstance(value, tuple) else value
        return out

    @classmethod
    def field_names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in dataclasses.fields(cls))

    @classmethod
    def from_dict(
        cls, data: Mapping[str, Any], *, base: DualViTConfig | None = None
    ) -> DualViTConfig:
        """Build from a mapping of fields; unknown keys are a ValueError naming them."""
        if not isinstance(data, Mapping):
            raise ValueError(f"config: expected a mapping of fields, got {type(data).__name__}")
        unknown = sorted(set(data) - set(cls.field_names()))
        if unknown:
            raise ValueError(
                f"{unknown[0]}: not a DualViTConfig field (fields: {', '.join(cls.field_names())})"
            )
        if base is None:
            return cls(**dict(data))
        return dataclasses.replace(base, **dict(data))

    def replace(self, **changes: Any) -> DualViTConfig:
        return dataclasses.replace(self, **changes)

    def save(self, path: str | Path) -> Path:
        """Write as YAML (``.yaml``/``.yml``) or JSON (anything else)."""
        path = Path(path)
        data = self.to_dict()
        if path.suffix.lower() in (".yaml", ".yml"):
            import yaml

            text = yaml.safe_dump(data, sort_keys=False)
        else:
            text = json.dumps(data, indent=2) + "\n"
        path.write_text(text)
        return path

    def describe(self) -> str:
        grid = (
            f"window {self.semantic_window}"
            if self.semantic_pool == "window"
            else f"grid {self.semantic_grid}x{self.semantic_grid}"
        )
        return (
            f"dims={list(self.embed_dims)} heads={list(self.num_heads)} depths={list(self.depths)} "
            f"ratios={list(self.mlp_ratios)} dual={self.dual_stages} semantic={grid}"
        )


def official_config(name: str) -> DualViTConfig:
    """The published configurations, as in the official factories."""
    try:
        kwargs = OFFICIAL_CONFIGS[name]
    except KeyError:
        raise ValueError(
            f"name: unknown official Dual-ViT {name!r} ({', '.join(OFFICIAL_CONFIGS)})"
        ) from None
    return DualViTConfig(name=name, **kwargs)


OFFICIAL_CONFIGS: dict[str, dict[str, Any]] = {
    "dualvit_s": dict(
        stem_hidden_dim=32,
        embed_dims=(64, 128, 320, 448),
        num_heads=(2, 4, 10, 14),
        mlp_ratios=(8, 8, 4, 3, 2),
        depths=(3, 4, 6, 3),
    ),
    "dualvit_b": dict(
        stem_hidden_dim=64,
        embed_dims=(64, 128, 320, 512),
        num_heads=(2, 4, 10, 16),
        mlp_ratios=(8, 8, 4, 3, 2),
        depths=(3, 4, 15, 3),
    ),
    "dualvit_l": dict(
        stem_hidden_dim=64,
        embed_dims=(96, 192, 384, 512),
        num_heads=(3, 6, 12, 16),
        mlp_ratios=(8, 8, 4, 3, 2),
        depths=(3, 6, 21, 3),
    ),
}


def load_config(path: str | Path) -> DualViTConfig:
    """Read a config file (YAML or JSON). ``base: dualvit_s`` starts from an official model.

    Raises ValueError with the file name and the field for anything malformed.
    """
    path = Path(path)
    from dvbench import safe_yaml
    from dvbench.files import read_bounded

    try:  # a regular file under the YAML cap (never /dev/zero or a pipe)
        raw = read_bounded(path, safe_yaml.MAX_BYTES, "config file")
    except OSError as exc:
        raise ValueError(f"{path}: cannot read config file ({exc.strerror or exc})") from None
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from None
    try:
        if path.suffix.lower() == ".json":
            data = json.loads(raw)
        else:  # no aliases (alias bombs), UTF-8 only: as every YAML dvbench reads
            data = safe_yaml.load(raw)
    except Exception as exc:  # both parsers raise their own error types
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ValueError(
            f"{path}: not valid {'JSON' if path.suffix.lower() == '.json' else 'YAML'}: {first}"
        ) from None
    if not isinstance(data, Mapping):
        raise ValueError(f"{path}: expected a mapping of config fields at the top level")
    data = dict(data)
    # An exported trial wraps the config: {"config": {...}, ...}
    if "config" in data and isinstance(data["config"], Mapping):
        data = dict(data["config"])
    base_name = data.pop("base", None)
    try:
        base = official_config(base_name) if base_name is not None else None
        cfg = DualViTConfig.from_dict(data, base=base)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{path}: {exc}") from None
    if cfg.name is None:
        cfg = cfg.replace(name=path.stem)
    return cfg
