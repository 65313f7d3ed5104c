"""The figures the README and docs/ quote equal the results files they name.

A measured figure is a measurement, not a unit test. What a test can hold is that a page quotes
its results file as the file says it, to the precision the page prints, and that the files,
scripts, modules and tests a page names exist. Each test reads one page's figures (regular
expressions on the markdown) and the values of the file it cites (pandas, JSON, text), and fails
naming the page, the figure and the file: a changed results file or a changed page breaks it
until the two agree again. Nothing here trains, times or imports torch.
"""

from __future__ import annotations

import json
import math
import re
import statistics
from pathlib import Path

import pandas as pd
import yaml

REPO = Path(__file__).resolve().parents[1]
BENCH = REPO / "results" / "benchmarks"
PAGES = ["README.md"] + sorted(f"docs/{p.name}" for p in (REPO / "docs").glob("*.md"))
NUM = r"([+\-−]?\d[\d,]*(?:\.\d+)?)"  # a printed figure: sign, thousands commas, decimals
INTERVAL = NUM + r" \[" + NUM + r", " + NUM + r"\]"


# ------------------------------------------------------------------------------ helpers
def page(name: str) -> str:
    return (REPO / name).read_text(encoding="utf-8")


def flat(text: str) -> str:
    """The text with every run of white space one blank: phrases wrapped over lines match."""
    return re.sub(r"\s+", " ", text)


def grab(text: str, pattern: str, where: str) -> tuple[str, ...]:
    match = re.search(pattern, text)
    assert match, f"{where}: no text matches {pattern!r} (the page changed: fix it or this test)"
    return match.groups()


def printed(value: float, like: str) -> str:
    """``value`` written the way the figure ``like`` is written: its decimals and its sign."""
    text = like.replace("−", "-").replace(",", "")
    decimals = len(text.split(".")[1]) if "." in text else 0
    out = f"{value:.{decimals}f}"
    if float(out) == 0:
        out = out.lstrip("-")
    if text.startswith("+") and not out.startswith("-"):
        out = "+" + out
    return out


def agree(figure: str, value: float, what: str) -> None:
    """The page's ``figure`` is ``value`` rounded to the precision the page prints (a value
    that the file itself stores at a rounding tie may be printed either way)."""
    value = float(value)
    assert not math.isnan(value), f"{what}: the file has no value"
    text = figure.replace("−", "-").replace(",", "")
    decimals = len(text.split(".")[1]) if "." in text else 0
    off = abs(float(text) - value)
    assert off <= 0.5 * 10**-decimals + 1e-9 * max(1.0, abs(value)), (
        f"{what}: the page says {figure}, the results file gives {value!r} "
        f"({printed(value, figure)} at the page's precision)"
    )


def agree_interval(cell: str, values: tuple[float, float, float], what: str) -> None:
    point, low, high = grab(cell, INTERVAL, what)
    for figure, value, part in zip((point, low, high), values, ("value", "low", "high")):
        agree(figure, value, f"{what} ({part})")


def table_rows(text: str, first_cell: str) -> list[list[str]]:
    """The cells of every markdown table row whose first cell matches ``first_cell``."""
    rows = []
    for line in text.splitlines():
        if line.startswith("|") and line.rstrip().endswith("|"):
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            if re.fullmatch(first_cell, cells[0]):
                rows.append(cells)
    return rows


def section(text: str, start: str, end: str | None = None) -> str:
    """The part of ``text`` from the line holding ``start`` to the one holding ``end``."""
    assert start in text, f"section {start!r} not found"
    part = text[text.index(start) :]
    if end is not None:
        assert end in part, f"section end {end!r} not found after {start!r}"
        part = part[: part.index(end)]
    return part


def bold(cell: str) -> str:
    return cell.replace("**", "").strip()


def speed_runs() -> list[dict]:
    """The tables of results/benchmarks/dualvit_speed_cpu.md, one per run, in file order."""
    text = (BENCH / "dualvit_speed_cpu.md").read_text()
    runs = []
    for block in re.split(r"\n(?=dualvit_s vs pvt_v2_b2:)", text.strip()):
        torch, count = grab(block, r"torch ([\d.]+)\S*, (\d+) interleaved runs", "dualvit_speed")
        rows = {}
        for cells in table_rows(block, r"(official )?dualvit_s|pvt_v2_b2"):
            rows[cells[0]] = {
                "gmacs": float(cells[1]), "ms": float(cells[2]), "gmacs_s": float(cells[5]),
                "efficiency": float(cells[6]),
            }  # fmt: skip
        runs.append({"torch": torch, "runs": int(count), "rows": rows, "text": block})
    return runs


def yaml_comment(name: str) -> str:
    """A shipped space file's comment lines, as one line of prose."""
    lines = (REPO / "search_spaces" / name).read_text().splitlines()
    return flat(" ".join(line.split("#", 1)[1] for line in lines if "#" in line))


# ------------------------------------------------------------------------------ README
YARDSTICK_ROWS = {
    "top-1, all 8,000 images": "top1",
    "test loss, all 8,000 images": "-test loss",
    "test loss, half A (chooses)": "-test loss (half A)",
    "test loss, half B (confirms)": "-test loss (half B)",
}


def test_readme_equal_cost_icc_table_is_yardstick_signals():
    text = page("README.md")
    signals = pd.read_csv(BENCH / "yardstick_signals.csv")
    cifar = signals[signals["setting"] == "cifar-300-32-15"].set_index("signal")
    where = "README, equal-cost ICC table vs yardstick_signals.csv"
    candidates, seeds = grab(text, r"\| signal \((\d+) candidates x (\d+) seeds\) \|", where)
    rows = table_rows(text, r"top-1, all.*|test loss, .*")
    assert {r[0] for r in rows} == set(YARDSTICK_ROWS), f"{where}: rows {[r[0] for r in rows]}"
    for label, icc, equal_cost, needed in rows:
        row = cifar.loc[YARDSTICK_ROWS[label]]
        assert int(candidates) == row["candidates_equal_cost"] and int(seeds) == row["seeds"]
        agree_interval(icc, (row["icc_pooled"], row["icc_pooled_low"], row["icc_pooled_high"]),
                       f"{where}, {label}, ICC")  # fmt: skip
        agree_interval(
            equal_cost,
            (row["icc_equal_cost"], row["icc_equal_cost_low"], row["icc_equal_cost_high"]),
            f"{where}, {label}, ICC at equal cost",
        )
        agree(needed, row["seeds_for_0.7_equal_cost"], f"{where}, {label}, seeds for 0.7")
    prose = flat(text)
    r2_top1, r2_loss = grab(
        prose, r"Cost explains R\^2 = " + NUM + r" of the candidates' mean top-1 \(" + NUM
        + r" of the test loss\)", where,
    )  # fmt: skip
    agree(r2_top1, cifar.loc["top1", "cost_r2_of_means"], f"{where}, cost R^2 of top-1")
    agree(r2_loss, cifar.loc["-test loss", "cost_r2_of_means"], f"{where}, cost R^2 of loss")
    first, top1_8, loss_8, top1_14, loss_14 = grab(
        prose, r"On the first (\d+) candidates alone the whole-set figures were " + NUM
        + r" for top-1 and " + NUM + r" for test loss, .*?with 14 they are " + NUM + " and "
        + NUM, where,
    )  # fmt: skip
    assert int(first) == cifar.loc["top1", "candidates"], f"{where}: the first candidates"
    agree(top1_8, cifar.loc["top1", "icc"], f"{where}, top-1 ICC of the first candidates")
    agree(loss_8, cifar.loc["-test loss", "icc"], f"{where}, loss ICC of the first candidates")
    agree(top1_14, cifar.loc["top1", "icc_pooled"], f"{where}, top-1 ICC of 14")
    agree(loss_14, cifar.loc["-test loss", "icc_pooled"], f"{where}, loss ICC of 14")
    # cifar.yaml quotes the same file in its comments
    comment = yaml_comment("cifar.yaml")
    where = "search_spaces/cifar.yaml comments vs yardstick_signals.csv"
    r2, r2_loss, top1, top1_low, top1_high, loss, loss_low, loss_high = grab(
        comment, r"explains R\^2 = " + NUM + r" of the candidates' mean top-1 \(" + NUM
        + r" of the test loss\), and AT EQUAL COST .*? ICC " + INTERVAL + r" \(top-1\) and "
        + INTERVAL + r" \(test loss\)", where,
    )  # fmt: skip
    agree(r2, cifar.loc["top1", "cost_r2_of_means"], where)
    agree(r2_loss, cifar.loc["-test loss", "cost_r2_of_means"], where)
    for figures, signal in (((top1, top1_low, top1_high), "top1"),
                            ((loss, loss_low, loss_high), "-test loss")):  # fmt: skip
        for figure, column in zip(figures, ("", "_low", "_high")):
            agree(figure, cifar.loc[signal, f"icc_equal_cost{column}"], f"{where}, {signal}")
    half_a, half_b3 = grab(comment, r"\(test loss: " + NUM + r" on half A; " + NUM
                           + r" with 3 seeds on half B\)", where)  # fmt: skip
    agree(half_a, cifar.loc["-test loss (half A)", "icc_equal_cost"], f"{where}, half A")
    agree(half_b3, cifar.loc["-test loss (half B)", "icc_equal_cost_3_seeds"], f"{where}, B")


def test_readme_cli_start_up_is_its_results_file():
    where = "README, CLI start-up vs cli_startup_cpu.txt"
    results = (BENCH / "cli_startup_cpu.txt").read_text()
    (torch,) = grab(results, r"torch ([\d.]+)", where)
    (help_s,) = grab(results, r"python cli\.py --help\s+" + NUM, where)
    (torch_s,) = grab(results, r'python -c "import torch"\s+' + NUM, where)
    help_fig, torch_fig, torch_page = grab(
        flat(page("README.md")),
        r"`--help` in " + NUM + r" s vs " + NUM + r" s for `import torch`, medians with torch "
        r"([\d.]+\d)", where,
    )  # fmt: skip
    agree(help_fig, float(help_s), f"{where}, --help")
    agree(torch_fig, float(torch_s), f"{where}, import torch")
    assert torch_page == torch, f"{where}: the page says torch {torch_page}, the file {torch}"


def e2e_ratio(name: str) -> dict:
    """train_e2e_*.csv: the old tree's and the warm new tree's medians, and per-round ratios."""
    runs = pd.read_csv(BENCH / name)
    old = runs[runs["tree"] == "old"].set_index("round")
    new = runs[(runs["tree"] == "new") & (runs["cache"] == "warm")].set_index("round")
    per_round = (old["wall_s"] / new["wall_s"]).dropna()
    return {
        "old": old["wall_s"].median(), "new": new["wall_s"].median(),
        "ratio": old["wall_s"].median() / new["wall_s"].median(),
        "low": per_round.min(), "high": per_round.max(),
        "top1_old": old["top1"].iloc[0], "top1_new": new["top1"].iloc[0],
        "baseline": str(runs["baseline"].iloc[0]),
    }  # fmt: skip


def test_readme_not_done_yet_is_its_results_files():
    prose = flat(section(page("README.md"), "## Not done yet"))
    where = "README, Not done yet"
    ratio, commit = grab(prose, r"Proxy training end to end is " + NUM
                         + r"x the trainer of commit (\w+)", where)  # fmt: skip
    mini = e2e_ratio("train_e2e_mini.csv")
    agree(ratio, mini["ratio"], f"{where}, end to end vs train_e2e_mini.csv")
    assert commit == mini["baseline"], f"{where}: commit {commit}, the file {mini['baseline']}"
    official, mac_rate = grab(prose, r"dualvit_s is " + NUM + r"x the official code and " + NUM
                              + r"x pvt_v2_b2's MAC rate", where)  # fmt: skip
    last = speed_runs()[-1]["text"]
    (speed_up,) = grab(last, r"speed-up over the official code: " + NUM + "x", where)
    (efficiency,) = grab(last, r"efficiency ratio dualvit_s/pvt_v2_b2: " + NUM, where)
    agree(official, float(speed_up), f"{where}, vs the official code (dualvit_speed_cpu.md)")
    agree(mac_rate, float(efficiency), f"{where}, MAC rate vs pvt_v2_b2 (dualvit_speed_cpu.md)")
    (postgres,) = grab(prose, r"PostgreSQL storage overhead is " + NUM + " ms per trial", where)
    storage = (BENCH / "scaleout_storage_cpu.txt").read_text()
    (median,) = grab(section(storage, "median of 3:"), r"postgresql\s+" + NUM, where)
    agree(postgres, float(median), f"{where}, PostgreSQL ms per trial (scaleout_storage_cpu.txt)")


def test_the_official_code_ratio_is_stated_once():
    """dualvit_s against the official code: stated with its command in docs/speed.md; any
    other page that gives a ratio gives the file's, and measurements.md links there."""
    (speed_up,) = grab(speed_runs()[-1]["text"], r"speed-up over the official code: " + NUM
                       + "x", "dualvit_speed_cpu.md")  # fmt: skip
    stated = {}
    patterns = (r"is " + NUM + r"x the official code", r"official code: " + NUM,
                r"speed-up over the official code \| \*\*" + NUM + "x")  # fmt: skip
    for name in PAGES:
        prose = flat(page(name))
        for pattern in patterns:
            for figure in re.findall(pattern, prose):
                agree(figure, float(speed_up), f"{name}: dualvit_s vs the official code")
                stated[name] = figure
    assert "docs/speed.md" in stated, "docs/speed.md no longer states the official-code ratio"
    assert "speed.md#inference" in page("docs/measurements.md")


# ------------------------------------------------------------------------------ docs/speed.md
SDPA = "SDPA fused (vs explicit softmax attention)"
TRAINING_LEVERS = {  # the page's row -> speed_levers.csv's lever, and the unit of its cells
    "depthwise conv on maps of <= 4 pixels": (
        "depthwise conv on <=2x2 maps as taps (vs oneDNN)", "ms"),
    "fused AdamW (vs foreach)": ("fused AdamW (vs foreach)", "ms"),
    SDPA: (SDPA, "ms"),
    "whole model channels-last": ("whole model channels-last (vs convs only)", "ms"),
    "evaluation batch 500": ("evaluation batch 500 (vs 64), per image", "ms"),
    "evaluation under `inference_mode`": (
        "evaluation under inference_mode (vs no_grad), per image", "ms"),
    "decoded-image disk cache": ("decoded-image disk cache (cifar10-mini load, s)", "s"),
    "2 one-thread workers": (
        "2 one-thread workers (vs 1 two-thread process), images/s", "img/s"),
}  # fmt: skip
INFERENCE_LEVERS = {
    SDPA: f"{SDPA}, inference",
    "stem BatchNorm folded into its convolutions": (
        "stem BatchNorm folded into its convs (vs conv + BN)"),
    "dual block run a few images at a time": "dual block run per image chunk (vs whole batch)",
}  # fmt: skip


def test_speed_page_is_its_results_files():
    text = page("docs/speed.md")
    levers = pd.read_csv(BENCH / "speed_levers.csv").set_index("lever")
    where = "docs/speed.md vs speed_levers.csv"
    table = section(text, "## Levers, each against its alternative", "## End to end")
    for label, (lever, unit) in TRAINING_LEVERS.items():
        (cells,) = [c for c in table_rows(table, r".*") if c[0].startswith(label)]
        row = levers.loc[lever]
        before, after = row["baseline_ms"], row["variant_ms"]
        if unit == "s":
            before, after = before / 1000, after / 1000
        elif unit == "img/s":  # milliseconds per image -> images per second
            before, after = 1000 / before, 1000 / after
        agree(grab(cells[1], NUM, where)[0], before, f"{where}, {label}, before")
        agree(grab(cells[2], NUM, where)[0], after, f"{where}, {label}, after")
        if "[" in cells[3]:
            agree_interval(cells[3], (row["ratio"], row["ratio_low"], row["ratio_high"]),
                           f"{where}, {label}, ratio")  # fmt: skip
        else:
            agree(grab(cells[3], NUM, where)[0], row["ratio"], f"{where}, {label}, ratio")
        assert cells[4].startswith("yes") == bool(row["kept"]), f"{where}, {label}: kept"
    (torch,) = grab(flat(table), r"torch ([\d.]+\d), its `torch` column", where)
    assert set(levers["torch"].str.split("+").str[0]) == {torch}, f"{where}: torch {torch}"
    inference = section(text, "Inference levers")
    for label, lever in INFERENCE_LEVERS.items():
        (cells,) = [c for c in table_rows(inference, r".*") if c[0].startswith(label)]
        row = levers.loc[lever]
        cell = cells[1].replace("x [", " [")
        agree_interval(cell, (row["ratio"], row["ratio_low"], row["ratio_high"]),
                       f"{where}, inference lever {label}")  # fmt: skip
        assert cells[2].startswith("yes") == bool(row["kept"]), f"{where}, {label}: kept"

    # end to end, as a user runs it
    where = "docs/speed.md, end to end vs train_e2e_*.csv"
    for label, name in (("cifar10-mini, 2 epochs", "train_e2e_mini.csv"),
                        ("fidelity: 300 images a class", "train_e2e_fidelity.csv")):  # fmt: skip
        (cells,) = [c for c in table_rows(text, r".*") if c[0].startswith(label)]
        e2e = e2e_ratio(name)
        agree(grab(cells[1], NUM, where)[0], e2e["old"], f"{where}, {label}, old")
        agree(grab(cells[2], NUM, where)[0], e2e["new"], f"{where}, {label}, new")
        ratio, low, high = grab(bold(cells[3]), NUM + r"x \[" + NUM + ", " + NUM + r"\]", where)
        for figure, key in ((ratio, "ratio"), (low, "low"), (high, "high")):
            agree(figure, e2e[key], f"{where}, {label}, {key}")
        top_old, top_new = grab(cells[4], NUM + " / " + NUM, where)
        agree(top_old, e2e["top1_old"], f"{where}, {label}, top-1 old")
        agree(top_new, e2e["top1_new"], f"{where}, {label}, top-1 new")

    # inference against the official code and pvt_v2_b2: the run with the official code
    where = "docs/speed.md, Inference vs dualvit_speed_cpu.md"
    run = speed_runs()[-1]
    ours, official = run["rows"]["dualvit_s"], run["rows"]["official dualvit_s"]
    infer = flat(section(text, "## Inference", "Inference levers"))
    speed_up, ours_ms, official_ms, low, high = grab(
        infer, r"\*\*" + NUM + r"x\*\* \(" + NUM + " vs " + NUM + r" ms; per round " + NUM + "-"
        + NUM + "x", where,
    )  # fmt: skip
    file_speed_up, file_low, file_high = grab(
        run["text"], r"speed-up over the official code: " + NUM + r"x \(per round " + NUM + "-"
        + NUM + "x", where,
    )  # fmt: skip
    agree(speed_up, float(file_speed_up), f"{where}, speed-up")
    agree(low, float(file_low), f"{where}, per round low")
    agree(high, float(file_high), f"{where}, per round high")
    agree(ours_ms, ours["ms"], f"{where}, dualvit_s ms")
    agree(official_ms, official["ms"], f"{where}, official ms")
    rate, ours_rate, pvt_rate = grab(infer, r"\*\*" + NUM + r"x\*\* \(" + NUM + " vs " + NUM
                                     + " GMAC/s", where)  # fmt: skip
    agree(rate, ours["efficiency"], f"{where}, MAC rate vs pvt_v2_b2")
    agree(ours_rate, ours["gmacs_s"], f"{where}, dualvit_s GMAC/s")
    agree(pvt_rate, run["rows"]["pvt_v2_b2"]["gmacs_s"], f"{where}, pvt_v2_b2 GMAC/s")
    ceiling, share = grab(infer, r"ceiling \(" + NUM + r" GMAC/s, a 2048² product\) \| " + NUM
                          + " %", where)  # fmt: skip
    file_ceiling, file_share = grab(run["text"], r"ceiling " + NUM + r" GMAC/s \(dualvit_s runs "
                                    r"at " + NUM + "%", where)  # fmt: skip
    agree(ceiling, float(file_ceiling), f"{where}, GEMM ceiling")
    agree(share, float(file_share), f"{where}, share of the ceiling")
    (goal_ms,) = grab(infer, r"2\.0x the official code means " + NUM + " ms", where)
    agree(goal_ms, official["ms"] / 2, f"{where}, 2.0x the official code")
    (rounds, torch) = grab(infer, r"(\d+) interleaved rounds, torch ([\d.]+\d)", where)
    assert (int(rounds), torch) == (run["runs"], run["torch"]), f"{where}: rounds/torch"

    # the forward's profile: results/benchmarks/inference_profile.txt
    where = "docs/speed.md, forward profile vs inference_profile.txt"
    profile = (BENCH / "inference_profile.txt").read_text()

    def share_of(op: str) -> float:
        return float(grab(profile, r"\s" + re.escape(op) + r"\s+" + NUM + "%", where)[0])

    gemm, attention, convolution, copies = grab(
        flat(text), r"is GEMMs " + NUM + " %, scaled-dot-product attention " + NUM
        + " %, convolutions " + NUM + r" % \(most of it the depthwise 3x3s\), copies " + NUM
        + " %", where,
    )  # fmt: skip
    agree(gemm, share_of("aten::addmm") + share_of("aten::mm"), f"{where}, GEMMs")
    agree(attention, share_of("aten::_scaled_dot_product_flash_attention_for_cpu"), where)
    agree(convolution, share_of("aten::mkldnn_convolution"), f"{where}, convolutions")
    agree(copies, share_of("aten::copy_"), f"{where}, copies")


# ------------------------------------------------------------------------------ measurements
def test_measurements_page_is_its_results_files():
    text = page("docs/measurements.md")
    prose = flat(text)
    where = "docs/measurements.md vs dualvit_speed_cpu.md"
    runs = speed_runs()
    rows = table_rows(text, r"\d+")
    assert [int(r[0]) for r in rows] == [1, 2], f"{where}: the runs table"
    for cells in rows:
        run = runs[int(cells[0]) - 1]
        assert run["runs"] == 9 and "official dualvit_s" not in run["rows"]
        ours, pvt = run["rows"]["dualvit_s"], run["rows"]["pvt_v2_b2"]
        for figure, value in zip(cells[1:6], (ours["ms"], pvt["ms"], ours["gmacs_s"],
                                              pvt["gmacs_s"], ours["efficiency"])):  # fmt: skip
            agree(bold(figure), value, f"{where}, run {cells[0]}")
    (torch,) = grab(prose, r"GMACs from dvbench's profiler; torch ([\d.]+\d)\)", where)
    assert {r["torch"] for r in runs[:2]} == {torch}, f"{where}: torch {torch}"
    assert "official code: 0." not in prose, f"{where}: the official-code ratio is speed.md's"

    where = "docs/measurements.md vs train_throughput_cpu.txt"
    results = (BENCH / "train_throughput_cpu.txt").read_text()
    bare, loop, ratio = grab(results, r"median: bare " + NUM + r" img/s, loop " + NUM
                             + r" img/s \(loop/bare = " + NUM, where)  # fmt: skip
    in_process, top1 = grab(results, r"in process: " + NUM + r" s wall.*top-1 " + NUM, where)
    (via_cli,) = grab(results, r"via the CLI .*?: " + NUM + " s wall", where)
    (file_torch,) = grab(results, r"torch ([\d.]+\d)", where)
    figures = grab(
        prose, r"2 threads, torch ([\d.]+\d)\): the loop trains at \*\*" + NUM + r" images/s\*\* "
        r"\(a bare forward/backward/step loop on one fixed batch: " + NUM + "; ratio " + NUM
        + r"\), and a 3-epoch proxy on `digits` takes \*\*" + NUM + r" s\*\* in process \(\*\*"
        + NUM + r" s\*\* as `python cli.py train`, imports included\), " + NUM + " % top-1",
        where,
    )  # fmt: skip
    assert figures[0] == file_torch, f"{where}: torch {figures[0]}, the file {file_torch}"
    for figure, value in zip(figures[1:], (loop, bare, ratio, in_process, via_cli, top1)):
        agree(figure, float(value), where)

    where = "docs/measurements.md vs profile_repeatability_cpu.txt"
    results = (BENCH / "profile_repeatability_cpu.txt").read_text()
    repeats = {}
    for line in results.splitlines():
        parts = line.split()
        if parts and parts[0] in ("dualvit_s", "pvt_v2_b2"):
            repeats[parts[0]] = {"count": float(parts[1]), "spread": float(parts[3].rstrip("%")),
                                 "ms": [float(p) for p in parts[4:]]}  # fmt: skip
    count_s, count_pvt, low, high, spread = grab(
        prose, r"takes \*\*" + NUM + r" s\*\* \(pvt_v2_b2 " + NUM + r" s\).*?had medians " + NUM
        + "-" + NUM + r" ms \(spread " + NUM + " %", where,
    )  # fmt: skip
    agree(count_s, repeats["dualvit_s"]["count"], f"{where}, counting dualvit_s")
    agree(count_pvt, repeats["pvt_v2_b2"]["count"], f"{where}, counting pvt_v2_b2")
    agree(low, min(repeats["dualvit_s"]["ms"]), f"{where}, fastest repeat")
    agree(high, max(repeats["dualvit_s"]["ms"]), f"{where}, slowest repeat")
    agree(spread, repeats["dualvit_s"]["spread"], f"{where}, spread")


# ------------------------------------------------------------------------------ docs/search.md
def test_search_page_space_table_is_the_space_files():
    text = page("docs/search.md")
    where = "docs/search.md, the spaces table vs search_spaces/*.yaml"
    rows = {r[0].strip("`"): r for r in table_rows(text, r"`\w+`")}
    files = sorted((REPO / "search_spaces").glob("*.yaml"))
    assert set(rows) == {f.stem for f in files}, f"{where}: rows {sorted(rows)}"
    for path in files:
        space = yaml.safe_load(path.read_text())
        name, trains, costs, objectives, trials, population, prefilter = rows[path.stem]
        here = f"{where}, {path.stem}"
        assert int(trials) == space["n_trials"], f"{here}: trials {trials}"
        assert int(population) == space["sampler"]["population_size"], f"{here}: population"
        assert costs.startswith(f"{space['profile']['resolution']} px"), f"{here}: costs at"
        assert ("latency" in costs) == bool(space["profile"].get("latency")), f"{here}: latency"
        (bound,) = grab(objectives, r"\(≤ " + NUM + r"\)", here)
        assert float(bound) == space["constraints"]["max_gflops"], f"{here}: GFLOPs bound"
        for objective in space["objectives"]:
            word = {"maximize": "max", "minimize": "min"}[objective["direction"]]
            names = {"gflops": "GFLOPs", "params_m": "params"}
            metric = names.get(objective["metric"], objective["metric"])
            assert f"{word} {metric}" in objectives, f"{here}: objective {objective}"
        filt = space.get("prefilter")
        want = "—" if filt is None else f"{filt['signal']}, {filt['keep']} of {filt['sample']}"
        assert prefilter == want, f"{here}: pre-filter {prefilter!r}, the file {want!r}"
        train = space.get("train")
        if train is None:
            assert trains.startswith("—"), f"{here}: trains nothing"
            continue
        assert f"{train['resolution']} px" in trains, f"{here}: training resolution"
        data = {"digits": "digits", "cifar10": "CIFAR-10"}[train["data"]]
        assert data in trains, f"{here}: data"
        if "train_samples" in train:
            assert f"{train['train_samples']} img/class" in trains, f"{here}: images a class"
        if "fidelity" in space:
            rungs = "/".join(f"{r:g}" for r in space["fidelity"]["rungs"])
            assert f"rungs {rungs} epochs" in trains, f"{here}: rungs"
        else:
            assert trains.startswith(f"{train['epochs']} epochs"), f"{here}: epochs"


def test_search_page_speed_and_quality_are_their_results_files():
    prose = flat(page("docs/search.md"))
    where = "docs/search.md vs search_speed_cpu.txt"
    results = flat((BENCH / "search_speed_cpu.txt").read_text())
    n, wall, rate = grab(results, r"(\d+) complete, 0 failed in " + NUM + " s = " + NUM, where)
    per_trial, work, overhead, share, export = grab(
        results, r"per trial: " + NUM + r" s wall; candidate work \(count \+ train\) " + NUM
        + r" s; harness overhead " + NUM + " s = " + NUM + r"% .*table export " + NUM, where,
    )  # fmt: skip
    figures = grab(
        prose, r"\*\*(\d+) trials in " + NUM + r" s \(" + NUM + r" trials/min\)\*\*, " + NUM
        + r" s per trial, of which the candidate's FLOP count and proxy training take " + NUM
        + r" s; .*? is \*\*" + NUM + r" s per trial = " + NUM + r" %\*\* .*?the table export "
        r"alone is " + NUM + " s", where,
    )  # fmt: skip
    assert figures[0] == n, f"{where}: trials"
    for figure, value in zip(figures[1:], (wall, rate, per_trial, work, overhead, share, export)):
        agree(figure, float(value), where)

    where = "docs/search.md vs search_quality_cpu.txt"
    results = (BENCH / "search_quality_cpu.txt").read_text()
    seeds = {int(s): [float(v) for v in vals] for s, *vals in re.findall(
        r"seed (\d+): NSGA-II@48 " + NUM + ", random@48 " + NUM + ", random@96 " + NUM, results)}
    means = [float(v) for v in grab(results, r"mean hypervolume: NSGA-II@48 " + NUM
                                    + ", random@48 " + NUM + ", random@96 " + NUM, where)]
    (ratio,) = grab(results, r"NSGA-II@48 / random@96 = " + NUM, where)
    text = page("docs/search.md")
    table = section(text, "| seed | NSGA-II, 48 trials |", "NSGA-II with 48 trials")
    rows = table_rows(table, r"\d+|mean")
    assert [r[0] for r in rows] == [*map(str, sorted(seeds)), "mean"], f"{where}: rows"
    for cells in rows:
        values = means if cells[0] == "mean" else seeds[int(cells[0])]
        for figure, value in zip(cells[1:], values):
            agree(bold(figure), value, f"{where}, seed {cells[0]}")
    (page_ratio,) = grab(prose, r"reaches " + NUM + r"× the hypervolume of random search", where)
    agree(page_ratio, float(ratio), f"{where}, NSGA-II / random@96")
    gflops, params, population = grab(
        prose, r"reference point: " + NUM + r" GFLOPs, " + NUM + r" M parameters; population "
        r"(\d+)", where,
    )  # fmt: skip
    file_gflops, file_params = grab(results, r"reference point \[" + NUM + ", " + NUM + r"\]",
                                    where)  # fmt: skip
    agree(gflops, float(file_gflops), f"{where}, reference GFLOPs")
    agree(params, float(file_params), f"{where}, reference params")
    assert f"population {population}" in results, f"{where}: population"


def test_search_page_multifidelity_is_its_results_files():
    text = page("docs/search.md")
    where = "docs/search.md, multi-fidelity vs multifidelity.csv"
    runs = pd.read_csv(BENCH / "multifidelity.csv")
    full = runs[runs["mode"] == "full"].set_index("seed")
    multi = runs[runs["mode"] == "multi"].set_index("seed")
    table = section(text, "| seed | hypervolume, full |", "Goal:")
    rows = table_rows(table, r"\d+|mean")
    assert [r[0] for r in rows] == [*map(str, sorted(multi.index)), "mean"], f"{where}: rows"
    for cells in rows[:-1]:
        seed, here = int(cells[0]), f"{where}, seed {cells[0]}"
        f, m = full.loc[seed], multi.loc[seed]
        for figure, value in zip(cells[1:8], (f["hypervolume"], m["hypervolume"],
                                              100 * m["hv_vs_full"], f["train_s"], m["train_s"],
                                              100 * m["compute_vs_full"],
                                              100 * m["epochs_vs_full"])):  # fmt: skip
            agree(grab(figure, NUM, here)[0], value, here)
        top, of = grab(cells[8], r"(\d+) of (\d+)", here)
        assert (int(top), int(of)) == (m["at_top_rung"], m["candidates"]), f"{here}: top rung"
        agree(grab(cells[9], NUM, here)[0], m["checkpoint_peak_mb"], f"{here}, checkpoints")
    mean = rows[-1]
    for cell, column in ((mean[3], "hv_vs_full"), (mean[6], "compute_vs_full"),
                         (mean[7], "epochs_vs_full")):  # fmt: skip
        agree(grab(bold(cell), NUM, where)[0], 100 * multi[column].mean(), f"{where}, mean")
    (lowest,) = grab(flat(text), r"met on every seed \(min " + NUM + " %", where)
    agree(lowest, 100 * multi["hv_vs_full"].min(), f"{where}, the lowest share")

    where = "multi-fidelity re-judged vs multifidelity_policies.csv"
    policies = pd.read_csv(BENCH / "multifidelity_policies.csv")
    mine = policies[policies["policy"].str.startswith("multi-fidelity")]
    (rungs,) = set(mine["policy"].str.extract(r"rungs ([\d/]+) ep")[0])
    row = mine[mine["row"] == "cheapest-k"].iloc[0]
    gain = (row["regret_gain"], row["regret_gain_low"], row["regret_gain_high"])
    for name, prose in (("docs/search.md", flat(text)),
                        ("search_spaces/medium.yaml", yaml_comment("medium.yaml"))):  # fmt: skip
        (page_rungs,) = grab(prose, r"rungs ([\d/]+)(?: ep)?(?:\)|,| on)", f"{name}, {where}")
        assert page_rungs == rungs, f"{name}, {where}: rungs {page_rungs}, the file {rungs}"
        (cell,) = grab(prose, r"gain ([+\-−]?[\d.]+ \[[^\]]+\])", f"{name}, {where}")
        agree_interval(cell, gain, f"{name}, {where}")
    assert mine["verdict"].dropna().str.startswith("not distinguished").all()


# ------------------------------------------------------------------------------ docs/training.md
FIDELITY_LABELS = {"3-epoch schedule (the search's proxy)": "3-epoch schedule",
                   "seed 1 at 15 ep (noise ceiling)": "seed 1 at 15 ep"}  # fmt: skip


def test_training_page_fidelity_table_is_its_results_files():
    text = page("docs/training.md")
    folder = BENCH / "calibrate" / "small_cifar10-large"
    where = "docs/training.md, fidelity table vs calibrate/small_cifar10-large/signals.csv"
    signals = pd.read_csv(folder / "signals.csv").set_index("signal")
    summary = json.loads((folder / "summary.json").read_text())
    rows = table_rows(section(text, "| signal | kind | Kendall", "The 15-epoch accuracies"), r".+")
    rows = [r for r in rows if r[0] not in ("signal", "---")]
    labels = [FIDELITY_LABELS.get(bold(r[0]), bold(r[0])) for r in rows]
    assert sorted(labels) == sorted(signals.index), f"{where}: rows {labels}"
    for label, cells in zip(labels, rows):
        row, here = signals.loc[label], f"{where}, {label}"
        assert cells[1] == row["kind"], f"{here}: kind {cells[1]}"
        agree_interval(bold(cells[2]), (row["kendall_tau"], row["kendall_low"],
                                        row["kendall_high"]), f"{here}, tau")  # fmt: skip
        for cell, column in zip(cells[3:8], ("spearman_rho", "top_quarter", "tau_vs_seed_mean",
                                             "seconds_per_candidate", "compute_fraction")):
            agree(bold(cell), row[column], f"{here}, {column}")
    (repeats,) = grab(text, r"τ vs seed mean \((\d+)\)", where)
    assert int(repeats) == summary["repeats"] == signals.loc["seed 1 at 15 ep", "n"]
    prose = flat(text)
    low, high, mean, sd, se = grab(
        prose, r"accuracies of the 20 candidates span " + NUM + "-" + NUM + r" % \(mean " + NUM
        + r" %, standard deviation " + NUM + r" points\), against a test-set standard error of "
        + NUM + " points", where,
    )  # fmt: skip
    target = pd.read_csv(folder / "candidates.csv")["rung.15"]
    agree(low, summary["target_top1_range"][0], f"{where}, lowest 15-epoch top-1")
    agree(high, summary["target_top1_range"][1], f"{where}, highest 15-epoch top-1")
    agree(mean, summary["target_top1_mean"], f"{where}, mean top-1")
    agree(sd, statistics.stdev(target), f"{where}, standard deviation of top-1")
    agree(se, summary["test_standard_error"], f"{where}, test-set standard error")
    tau, n = grab(prose, r"15-epoch ranking itself has Kendall τ " + NUM + r"\*\* \((\d+) "
                  "candidates", where)  # fmt: skip
    agree(tau, summary["seed_to_seed_tau"], f"{where}, seed-to-seed tau")
    assert int(n) == summary["repeats"]


def test_training_page_prefilter_is_prefilter_policies():
    policies = pd.read_csv(BENCH / "prefilter_policies.csv")
    shipped = policies[policies["policy"] == "pre-filter synflow, keep 1 of 2 (default)"]
    own = shipped[shipped["row"] == shipped["policy"]].iloc[0]
    cheapest = shipped[shipped["row"] == "cheapest-k"].iloc[0]
    random_k = shipped[shipped["row"] == "random-k"].iloc[0]
    where = "docs/training.md, the pre-filter vs prefilter_policies.csv"
    figures = grab(
        flat(page("docs/training.md")),
        r"Synflow keeping 1 of 2, the shipped setting: regret " + INTERVAL + r", cheapest-k at "
        r"the same compute " + NUM + r", gain " + INTERVAL + r" -- \*\*not distinguished\*\* "
        r"\(random-k at the same compute: " + NUM, where,
    )  # fmt: skip
    values = (own["regret"], own["regret_low"], own["regret_high"], cheapest["regret"],
              cheapest["regret_gain"], cheapest["regret_gain_low"], cheapest["regret_gain_high"],
              random_k["regret"])  # fmt: skip
    for figure, value in zip(figures, values):
        agree(figure, value, where)
    verdicts = policies.loc[policies["policy"].str.startswith("pre-filter"), "verdict"].dropna()
    assert len(verdicts) and verdicts.str.startswith("not distinguished").all(), where
    checks = pd.read_csv(BENCH / "prefilter_policies_checks.csv")
    reader = checks[checks["reader"].str.startswith("full training")].set_index("measure")
    assert not reader.loc["regret", "passes"], f"{where}: regret now passes the permuted check"
    # small.yaml's comment quotes the same row
    where = "search_spaces/small.yaml comments vs prefilter_policies.csv"
    regret, gain, low, high, random_figure = grab(
        yaml_comment("small.yaml"), r"regret " + NUM + r", gain over cheapest-k " + INTERVAL
        + r" points -- NOT distinguished \(random-k did better, " + NUM, where,
    )  # fmt: skip
    for figure, value in zip((regret, gain, low, high, random_figure),
                             (own["regret"], *values[4:7], random_k["regret"])):  # fmt: skip
        agree(figure, value, where)


# ------------------------------------------------------------------------------ docs/latency.md
def test_latency_page_is_its_results_files():
    text = page("docs/latency.md")
    where = "docs/latency.md vs latency_predictor.csv"
    table = pd.read_csv(BENCH / "latency_predictor.csv")
    n20 = table[table["samples"] == 20].set_index("setting")
    rows = table_rows(text, r"\w+-\dt-b\d+-\d+px")
    assert [r[0] for r in rows] == list(n20.index), f"{where}: settings {[r[0] for r in rows]}"
    for cells in rows:
        row, here = n20.loc[cells[0]], f"{where}, {cells[0]}"
        assert (int(cells[1]), int(cells[2]), cells[3]) == (
            row["held_out"], row["rounds"], row["model"]), f"{here}: held out, rounds, model"
        pairs = (
            (cells[4], ("spearman", "spearman_low", "spearman_high")),
            (cells[5].replace(" %", ""), ("mdape_pct", "mdape_pct_low", "mdape_pct_high")),
            (cells[8], ("spearman_gain", "spearman_gain_low", "spearman_gain_high")),
            (cells[9], ("mdape_gain_pct", "mdape_gain_pct_low", "mdape_gain_pct_high")),
            (cells[10], ("ceiling_spearman", "ceiling_spearman_low", "ceiling_spearman_high")),
        )
        for cell, columns in pairs:
            agree_interval(cell, tuple(row[c] for c in columns), f"{here}, {columns[0]}")
        agree(cells[6], row["flops_spearman"], f"{here}, FLOPs Spearman")
        agree(cells[7].replace(" %", ""), row["flops_mdape_pct"], f"{here}, FLOPs MdAPE")
        assert cells[11] == ("met" if row["goal_met"] else "missed"), f"{here}: goal"
        assert bold(cells[12]) == ("yes" if row["beats_flops"] else "no"), f"{here}: beats FLOPs"
    prose = flat(text)
    met, of = grab(prose, r"\*\*met at the point on (\d+) of (\d+) settings\*\*", where)
    assert (int(met), int(of)) == (n20["goal_met"].sum(), len(n20)), f"{where}: goals met"
    beats, of = grab(prose, r"\*\*Better than FLOPs alone is shown on (\d+) of (\d+) "
                     "settings", where)  # fmt: skip
    assert (int(beats), int(of)) == (n20["beats_flops"].sum(), len(n20)), f"{where}: beats"
    (remeasured,) = grab(prose, r"`remeasured_spearman`, " + NUM + " on `small-1t-b1`", where)
    agree(remeasured, n20.loc["small-1t-b1-224px", "remeasured_spearman"], where)
    device, torch = grab(prose, r"record `([^`]+)`\), torch ([\d.]+\d) \(its `torch` "
                         r"column\)", where)  # fmt: skip
    profiles = [json.loads(p.read_text()) for p in (BENCH / "latency_predictor").glob("*.json")]
    assert profiles and {p["device_name"] for p in profiles} | set(table["device_name"]) == {
        device}, f"{where}: device {device}"
    assert {p["torch"].split("+")[0] for p in profiles} | set(
        table["torch"].str.split("+").str[0]) == {torch}, f"{where}: torch {torch}"

    where = "docs/latency.md vs latency_pred_search_cost.csv"
    cost = pd.read_csv(BENCH / "latency_pred_search_cost.csv").set_index("objective")
    figures = grab(
        prose, r"counting GFLOPs \(today's search\) " + NUM + r" s median; predicting latency "
        r"from the profile " + NUM + r" s, a ratio of \*\*" + NUM + r"\*\* \(interquartile " + NUM
        + "–" + NUM + r"\) .*? settings " + NUM + r" s, \*\*" + NUM + r"×\*\* \(" + NUM + "–"
        + NUM + "×", where,
    )  # fmt: skip
    pred, timed = cost.loc["latency_pred_ms"], cost.loc["latency_ms_median"]
    values = (cost.loc["gflops", "median_s"], pred["median_s"], pred["ratio_to_gflops_median"],
              pred["ratio_q25"], pred["ratio_q75"], timed["median_s"],
              timed["ratio_to_gflops_median"], timed["ratio_q25"], timed["ratio_q75"])  # fmt: skip
    for figure, value in zip(figures, values):
        agree(figure, value, where)


# ------------------------------------------------------------------------------ the rest
def test_knob_effects_simulation_table_is_its_results_file():
    text = page("docs/knob-effects.md")
    where = "docs/knob-effects.md vs effects_simulation.csv"
    simulation = pd.read_csv(BENCH / "effects_simulation.csv")
    table = section(text, "| scenario | model | coverage", "Coverage is met")
    rows = [r for r in table_rows(table, r".+") if r[0] not in ("scenario", "---")]
    assert len(rows) == len(simulation), f"{where}: {len(rows)} rows, {len(simulation)} scenarios"
    verdicts = {"met": "met", "missed": "missed", "within MC error": "within Monte-Carlo error"}
    for cells, (_, row) in zip(rows, simulation.iterrows()):
        here = f"{where}, {cells[0]} (file: {row['scenario']})"
        assert cells[1] == row["model"], f"{here}: model {cells[1]}"
        for cell, stem in ((cells[2], "coverage"), (cells[3], "false_positive")):
            cell = bold(cell)
            agree_interval(cell.replace(" %", ""), tuple(
                100 * row[f"{stem}{end}"] for end in ("", "_low", "_high")), f"{here}, {stem}")
            verdict = cell.split("] ", 1)[1]
            assert verdicts[verdict] == row[f"{stem}_verdict"], f"{here}: {stem} verdict"
        agree(cells[4].replace(" %", ""), 100 * row["power"], f"{here}, power")
        agree(cells[5].replace(" %", ""), 100 * row["any_zero_knob_distinguished"], here)
    (studies,) = grab(flat(text), r"(\d+) studies per scenario", where)
    assert set(simulation["studies"]) == {int(studies)}, f"{where}: studies"


def test_models_page_grad_checkpointing_is_its_results_file():
    where = "docs/models.md vs grad_checkpointing_cpu.txt"
    results = (BENCH / "grad_checkpointing_cpu.txt").read_text()
    (torch,) = grab(results, r"torch ([\d.]+\d)", where)
    (off,) = table_rows(results, "off")
    (on,) = table_rows(results, "on")
    memory, step = grab(results, r"peak memory " + NUM + r"x .*step time " + NUM + "x", where)
    figures = grab(
        flat(page("docs/models.md")), r"224 px, CPU, torch ([\d.]+\d): peak " + NUM + " -> " + NUM
        + r" MiB \(" + NUM + r"x\) for " + NUM + "x the step time", where,
    )  # fmt: skip
    assert figures[0] == torch, f"{where}: torch {figures[0]}, the file {torch}"
    for figure, value in zip(figures[1:], (off[1], on[1], memory, step)):
        agree(figure, float(value), where)


def recorded_cpus() -> set[str]:
    names = set(pd.read_csv(BENCH / "latency_predictor.csv")["device_name"])
    names |= {json.loads(p.read_text())["device_name"]
              for p in (BENCH / "latency_predictor").glob("*.json")}  # fmt: skip
    for path in BENCH.glob("*.txt"):
        names |= set(re.findall(r"(?:Intel|AMD)[^,\n]*", path.read_text()))
    return names


def test_a_cpu_named_on_a_page_is_one_the_results_record():
    recorded = " ".join(recorded_cpus())
    for name in PAGES:
        for model in re.findall(r"\b(EPYC|Xeon|Ryzen|Core i\d|Graviton|Neoverse)\b", page(name)):
            assert model in recorded, (
                f"{name} names a {model} CPU; the results files record only {recorded!r}"
            )


def repo_files() -> list[str]:
    files = []
    for folder in ("dvbench", "tests", "benchmarks", "search_spaces", ".ci", "docs", "results"):
        files += [p.relative_to(REPO).as_posix() for p in (REPO / folder).rglob("*")
                  if p.is_file() and "__pycache__" not in p.parts]  # fmt: skip
    return files + [p.name for p in REPO.iterdir() if p.is_file()]


# files of other projects the pages name: timm's scripts and tests, the official code
ELSEWHERE = {"train.py", "benchmark.py", "tests/test_models.py"}


def test_files_the_pages_name_exist():
    files = repo_files()
    missing = []
    for name in PAGES:
        text = re.sub(r"```(?!\n)[^\n]*\n.*?```", "", page(name), flags=re.S)  # code blocks
        refs = set(re.findall(r"results/benchmarks/[\w./*-]*\w", text))
        refs |= set(re.findall(r"benchmarks/bench_\w+\.py", text))
        for code in re.findall(r"`([^`\n]+)`", text):
            refs |= set(re.findall(r"(?<![\w/.])([\w./-]+\.py)\b", code))
        for ref in sorted(refs - ELSEWHERE):
            if "*" in ref:
                found = list(REPO.glob(ref))
            elif (REPO / ref).is_dir():
                found = [ref]
            else:
                found = [f for f in files if f == ref or f.endswith("/" + ref)]
            if not found:
                missing.append(f"{name}: {ref}")
    # the README's map of the code: every module it lists
    tree = section(page("README.md"), "## How it fits together", "Imports point one way")
    for ref in re.findall(r"([\w/]+\.py)\b", tree):
        if not any(f == ref or f.endswith("/" + ref) for f in files):
            missing.append(f"README.md (How it fits together): {ref}")
    assert not missing, "pages name files that do not exist:\n" + "\n".join(missing)


def test_the_claims_table_names_tests_that_exist():
    """Every ``file::test`` of tests/README.md names a test (or fixture) that exists, and every
    test file it names exists: a renamed test or a moved file shows here."""
    text = page("tests/README.md")
    missing, seen = [], 0
    for line in text.splitlines():
        if not line.startswith("|"):
            continue
        current = None
        for ref in re.findall(r"`([^`]+)`", line):
            if "::" in ref:
                path, name = ref.split("::", 1)
                if path and not path.endswith(".py"):
                    continue  # prose about the notation, not a reference
                current = path or current
                candidates = [REPO / "tests" / current, REPO / current]
                name = name.split("[")[0].split(" ")[0]
            elif re.fullmatch(r"[\w/]+/test_\w+\.py", ref):
                candidates, name = [REPO / "tests" / ref, REPO / ref], None
                current = ref
            else:
                continue
            seen += 1
            found = [p for p in candidates if p.is_file()]
            if not found:
                missing.append(f"{ref}: no such file under tests/")
            elif name and not re.search(rf"def {re.escape(name)}\b", found[0].read_text()):
                missing.append(f"{ref}: no test {name} in {found[0].relative_to(REPO)}")
    assert seen > 100, f"only {seen} test references found: the table's format changed"
    assert not missing, "tests/README.md names tests that do not exist:\n" + "\n".join(missing)

