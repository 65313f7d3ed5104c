"""Proxy-training speed levers, each measured side by side with its alternative in one run.

The model is the issue's small Dual-ViT (widths 32/64/128/160, depths 1/2/2/1, heads 2/4/8/10,
MLP ratio 3, stem 16) at 32 px, batch 64, one thread, on cifar10-mini's images (the shared
data) or random images when those are absent. A training-step lever is timed as
forward + backward + AdamW step over ``--steps`` steps, the two variants alternating for
``--rounds`` rounds; the ratio is of the medians (> 1: the variant is faster). Kept: the
variant is the default now.

    python benchmarks/bench_speed_levers.py [--rounds 5] [--steps 15]
    python benchmarks/bench_speed_levers.py --compile     # adds torch.compile (minutes)
    python benchmarks/bench_speed_levers.py --cores       # 2 one-thread workers vs 1 two-thread
    python benchmarks/bench_speed_levers.py --inference --no-training   # inference levers only
Writes results/benchmarks/speed_levers.csv; the profile of one training step (torch.profiler,
top operators) goes to results/benchmarks/train_step_profile.txt.

``--inference`` adds levers of the issue's inference setting (alone with ``--no-training``):
dualvit_s, batch 8, 224 px, fp32, all cores, one forward per variant and round (``--rounds`` x 4,
alternating);
the alternatives are written here, as patches of the model's forward, and must give the same
logits (<= 1e-5). Its profile goes to results/benchmarks/inference_profile.txt.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from unittest import mock

import pandas as pd
import torch
import torch.nn.functional as F

from dvbench.models import DualViTConfig, create_model
from dvbench.models.dualvit import DualBlock, DWConv, PixelFFN, Stem, _map_tokens
from dvbench.train import TrainSettings, build_candidate, load_data
from dvbench.train.data import Normalizer
from dvbench.train.loop import evaluate, make_optimizer

REPO = Path(__file__).resolve().parents[1]
MINI = REPO.parent / "shared" / "data" / "cifar10-mini"
OUT = REPO / "results" / "benchmarks"
SMALL = DualViTConfig(
    embed_dims=(32, 64, 128, 160), num_heads=(2, 4, 8, 10), depths=(1, 2, 2, 1),
    mlp_ratios=(3, 3, 3, 3), stem_hidden_dim=16, num_classes=10, img_size=32, name="small",
)  # fmt: skip
BATCH = 64


def batch() -> tuple[torch.Tensor, torch.Tensor]:
    torch.manual_seed(0)
    return torch.randn(BATCH, 3, 32, 32), torch.randint(0, 10, (BATCH,))


def step_seconds(configure: Callable[[torch.nn.Module], torch.optim.Optimizer], steps: int):
    """Seconds per training step of a fresh model that ``configure`` adjusts."""
    torch.manual_seed(0)
    model = build_candidate(SMALL, num_classes=10, resolution=32).train()
    optimizer = configure(model)
    x, y = batch()
    for i in range(steps + 2):
        if i == 2:
            start = time.perf_counter()
        loss = F.cross_entropy(model(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return (time.perf_counter() - start) / steps


def default(model):
    return make_optimizer(model, TrainSettings(batch_size=BATCH))


def small_map_off(model):
    DWConv.small_map = 0
    return default(model)


def explicit_attention(model):
    for module in model.modules():
        if hasattr(module, "fused_attn"):
            module.fused_attn = False
    return default(model)


def foreach_adamw(model):
    from timm.optim import param_groups_weight_decay

    groups = param_groups_weight_decay(model, 0.05, no_weight_decay_list=model.no_weight_decay())
    return torch.optim.AdamW(groups, lr=2e-3, foreach=True)


def channels_last(model):
    model.to(memory_format=torch.channels_last)
    return default(model)


def compare(name, old, new, args, *, kept: bool, note: str) -> dict:
    """Alternate the two variants; each call must restore the defaults it changed."""
    olds, news = [], []
    for _ in range(args.rounds):
        olds.append(old())
        DWConv.small_map = 4
        news.append(new())
        DWConv.small_map = 4
    o, n = statistics.median(olds), statistics.median(news)
    row = {"lever": name, "baseline_ms": o * 1e3, "variant_ms": n * 1e3, "ratio": o / n,
           "ratio_low": min(a / b for a, b in zip(olds, news, strict=True)),
           "ratio_high": max(a / b for a, b in zip(olds, news, strict=True)),
           "kept": kept, "note": note}  # fmt: skip
    print(f"{name:<48} {o * 1e3:8.1f} -> {n * 1e3:8.1f} ms  {o / n:5.2f}x  kept={kept}")
    return row


def training_levers(args) -> list[dict]:
    steps = args.steps
    run = lambda cfg: lambda: step_seconds(cfg, steps)  # noqa: E731
    return [
        compare("depthwise conv on <=2x2 maps as taps (vs oneDNN)", run(small_map_off),
                run(default), args, kept=True,
                note="same function, float rounding only (tests/models)"),
        compare("SDPA fused (vs explicit softmax attention)", run(explicit_attention),
                run(default), args, kept=True, note="the default before; re-measured"),
        compare("fused AdamW (vs foreach)", run(foreach_adamw), run(default), args, kept=True,
                note="the default before; re-measured"),
        compare("whole model channels-last (vs convs only)", run(default), run(channels_last),
                args, kept=False, note="--channels-last stays opt-in"),
    ]  # fmt: skip


def evaluation_levers(args, data) -> list[dict]:
    model = build_candidate(SMALL, num_classes=10, resolution=32).eval()
    normalizer = Normalizer(data.mean, data.std, device="cpu")
    plain_evaluate = evaluate.__wrapped__

    def timed(batch_size: int, mode) -> Callable[[], float]:
        def go() -> float:
            start = time.perf_counter()
            with mode():  # evaluate() itself runs under inference_mode: call what it wraps
                plain_evaluate(
                    model, data.test_images, data.test_labels, normalizer=normalizer,
                    batch_size=batch_size,
                )  # fmt: skip
            return (time.perf_counter() - start) / data.num_test

        return go

    return [
        compare("evaluation batch 500 (vs 64), per image", timed(64, torch.inference_mode),
                timed(500, torch.inference_mode), args, kept=True,
                note="eval_batch_size default 500"),
        compare("evaluation under inference_mode (vs no_grad), per image",
                timed(500, torch.no_grad), timed(500, torch.inference_mode), args, kept=True,
                note="the default before; re-measured"),
    ]  # fmt: skip


def data_lever() -> list[dict]:
    if not MINI.is_dir():
        return []
    import dvbench.train.data as data_module

    with tempfile.TemporaryDirectory() as cache:
        os.environ["DVBENCH_CACHE_DIR"] = cache
        times = []
        for _ in range(2):  # cold (decode, write the cache), then warm (read it)
            data_module._read_class_folders.cache_clear()
            start = time.perf_counter()
            load_data(MINI, resolution=32)
            times.append(time.perf_counter() - start)
    print(f"{'decoded-image cache, cifar10-mini':<48} {times[0]:8.2f} -> {times[1]:8.2f} s")
    return [{"lever": "decoded-image disk cache (cifar10-mini load, s)",
             "baseline_ms": times[0] * 1e3, "variant_ms": times[1] * 1e3,
             "ratio": times[0] / times[1], "kept": True,
             "note": "a new process skips decoding; keyed by each file's size, mtime"}]  # fmt: skip


def compile_lever(args) -> list[dict]:
    torch.manual_seed(0)
    model = build_candidate(SMALL, num_classes=10, resolution=32).train()
    optimizer, x, y = default(model), *batch()
    compiled = torch.compile(model)
    start = time.perf_counter()
    for _ in range(2):  # the first steps compile forward and backward
        loss = F.cross_entropy(compiled(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    compile_s = time.perf_counter() - start
    start = time.perf_counter()
    for _ in range(args.steps):
        loss = F.cross_entropy(compiled(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    compiled_s = (time.perf_counter() - start) / args.steps
    eager_s = step_seconds(default, args.steps)
    print(f"torch.compile: {compile_s:.0f} s to compile, {eager_s * 1e3:.1f} -> "
          f"{compiled_s * 1e3:.1f} ms a step")  # fmt: skip
    return [{"lever": "torch.compile inductor (vs eager), per step", "baseline_ms": eager_s * 1e3,
             "variant_ms": compiled_s * 1e3, "ratio": eager_s / compiled_s, "kept": False,
             "note": f"compile {compile_s:.0f} s once per shape; not amortised"}]  # fmt: skip


WORKER = r"""
import sys, time, torch, torch.nn.functional as F
sys.path.insert(0, sys.argv[1])
from benchmarks.bench_speed_levers import SMALL, batch, default
from dvbench.train import build_candidate
torch.set_num_threads(int(sys.argv[2]))
model = build_candidate(SMALL, num_classes=10, resolution=32).train()
opt, (x, y) = default(model), batch()
for i in range(int(sys.argv[3]) + 2):
    if i == 2: start = time.perf_counter()
    loss = F.cross_entropy(model(x), y)
    opt.zero_grad(set_to_none=True); loss.backward(); opt.step()
print((int(sys.argv[3])) * x.shape[0] / (time.perf_counter() - start))
"""


def cores_lever(args) -> list[dict]:
    def images_per_s(workers: int, threads: int) -> float:
        procs = [subprocess.Popen([sys.executable, "-c", WORKER, str(REPO), str(threads),
                                   str(args.steps * 2)], stdout=subprocess.PIPE, text=True)
                 for _ in range(workers)]  # fmt: skip
        return sum(float(p.communicate()[0]) for p in procs)

    one = [images_per_s(1, 2) for _ in range(args.rounds)]
    two = [images_per_s(2, 1) for _ in range(args.rounds)]
    o, n = statistics.median(one), statistics.median(two)
    print(f"two one-thread workers vs one two-thread process: {o:.0f} -> {n:.0f} images/s")
    return [{"lever": "2 one-thread workers (vs 1 two-thread process), images/s",
             "baseline_ms": 1e3 / o, "variant_ms": 1e3 / n, "ratio": n / o, "kept": True,
             "note": "search --workers / calibrate --shard: one process a core"}]  # fmt: skip


def _folded_stem(self, x: torch.Tensor) -> tuple[torch.Tensor, int, int]:
    """Stem.forward with each eval-mode BatchNorm folded into the conv before it."""
    x = x.contiguous(memory_format=torch.channels_last)
    layers = list(self.conv)
    for conv, bn in zip(layers[0::3], layers[1::3], strict=True):
        scale = bn.weight * torch.rsqrt(bn.running_var + bn.eps)
        weight, bias = conv.weight * scale.view(-1, 1, 1, 1), bn.bias - bn.running_mean * scale
        x = torch.relu_(F.conv2d(x, weight, bias, conv.stride, conv.padding))
    x = self.proj(x)
    return self.norm(_map_tokens(x)), x.shape[2], x.shape[3]


_plain_dual_block = DualBlock.forward


def _chunked_dual_block(self, x, semantics, h, w):
    """DualBlock.forward a few images at a time, as PixelFFN's inference path chunks: the
    pixel q/k/v (B x N x 3C, 19 MB at stage 1 of batch 8) is page-faulted in on every call."""
    per_chunk = max(1, PixelFFN.chunk_elements // (3 * x.shape[1] * x.shape[2]))
    parts = [
        _plain_dual_block(self, pixels, semantic, h, w)
        for pixels, semantic in zip(x.split(per_chunk), semantics.split(per_chunk), strict=True)
    ]
    return torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts])


def inference_levers(args) -> list[dict]:
    """The inference levers on all cores; the caller's thread count is restored after."""
    threads = torch.get_num_threads()
    torch.set_num_threads(os.cpu_count() or 1)
    try:
        return _inference_levers(args)
    finally:
        torch.set_num_threads(threads)


def _inference_levers(args) -> list[dict]:
    model = create_model("dualvit_s").eval()
    for module in model.modules():  # BatchNorm statistics as a trained model has them
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.normal_(0, 0.1)
            module.running_var.uniform_(0.5, 1.5)
    x = torch.randn(8, 3, 224, 224, generator=torch.Generator().manual_seed(0))

    def run(*patches) -> tuple[torch.Tensor, float]:
        """Logits and seconds of one forward with ``(owner, attribute, value)`` patches."""
        with contextlib.ExitStack() as stack, torch.inference_mode():
            for owner, name, value in patches:
                stack.enter_context(mock.patch.object(owner, name, value))
            start = time.perf_counter()
            logits = model(x)
            return logits, time.perf_counter() - start

    def forward(*patches) -> Callable[[], float]:
        return lambda: run(*patches)[1]

    folded = (Stem, "forward", _folded_stem)
    chunked = (DualBlock, "forward", _chunked_dual_block)
    explicit = [(m, "fused_attn", False) for m in model.modules() if hasattr(m, "fused_attn")]
    want = run()[0]  # also the warm-up
    for name, patches in {"folded stem": [folded], "chunked dual block": [chunked],
                          "explicit attention": explicit}.items():  # fmt: skip
        if (run(*patches)[0] - want).abs().max().item() > 1e-5:
            raise SystemExit(f"bench_speed_levers: the {name} changes the logits")
    rounds = argparse.Namespace(rounds=args.rounds * 4)
    setting = "inference, dualvit_s batch 8 224 px, all cores"
    rows = [
        compare("SDPA fused (vs explicit softmax attention), inference", forward(*explicit),
                forward(), rounds, kept=True, note=setting + "; the default before"),
        compare("stem BatchNorm folded into its convs (vs conv + BN)", forward(),
                forward(folded), rounds, kept=False, note=setting),
        compare("dual block run per image chunk (vs whole batch)", forward(),
                forward(chunked), rounds, kept=False, note=setting),
    ]  # fmt: skip
    header = (f"torch.profiler, 3 forwards of dualvit_s (batch 8, 224 px, fp32, "
              f"{torch.get_num_threads()} threads), torch {torch.__version__}\n")  # fmt: skip
    from dvbench.files import write_text_atomic

    table = operator_table(lambda: run()[0], 3, by_shape=True)
    write_text_atomic(header + table, OUT / "inference_profile.txt")
    return rows


def profile_table(steps: int = 5) -> str:
    torch.manual_seed(0)
    model = build_candidate(SMALL, num_classes=10, resolution=32).train()
    optimizer, (x, y) = default(model), batch()

    def step():
        loss = F.cross_entropy(model(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    step(), step()
    return operator_table(step, steps)


def operator_table(call: Callable[[], object], times: int, *, by_shape: bool = False) -> str:
    """torch.profiler's top operators over ``times`` calls (and, with ``by_shape``, the top
    operator-and-input-shape pairs below them)."""
    with torch.profiler.profile(record_shapes=True) as prof:
        for _ in range(times):
            call()
    text = prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=25)
    if by_shape:
        text += "\n\nby input shape\n" + prof.key_averages(group_by_input_shape=True).table(
            sort_by="self_cpu_time_total", row_limit=25
        )
    return text


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=15)
    parser.add_argument("--compile", action="store_true")
    parser.add_argument("--cores", action="store_true")
    parser.add_argument("--inference", action="store_true", help="add the inference levers")
    parser.add_argument("--no-training", action="store_true", help="skip the training levers")
    args = parser.parse_args()
    torch.set_num_threads(1)
    rows = []
    if not args.no_training:
        data = load_data(MINI if MINI.is_dir() else "digits", resolution=32)
        print(f"small Dual-ViT, batch {BATCH}, 32 px, one thread, torch {torch.__version__}")
        rows += training_levers(args) + evaluation_levers(args, data) + data_lever()
    if args.inference:
        rows += inference_levers(args)
    if args.compile:
        rows += compile_lever(args)
    if args.cores:
        rows += cores_lever(args)
    from dvbench.files import write_atomic, write_text_atomic

    path = OUT / "speed_levers.csv"
    previous = pd.read_csv(path) if path.is_file() else pd.DataFrame(columns=["lever"])
    table = pd.DataFrame(rows)
    kept_rows = previous[~previous["lever"].isin(table["lever"])]  # levers not re-run this time
    table = pd.concat([table, kept_rows], ignore_index=True)
    table["torch"] = table.get("torch", pd.Series(dtype=str)).fillna(str(torch.__version__))
    write_atomic(table, path)
    if not args.no_training:
        header = (f"torch.profiler, 5 training steps of the small Dual-ViT (batch {BATCH}, 32 px, "
                  f"one thread), torch {torch.__version__}\n")  # fmt: skip
        write_text_atomic(header + profile_table(), OUT / "train_step_profile.txt")
    print(f"wrote {path.relative_to(REPO)} and the profile tables")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
