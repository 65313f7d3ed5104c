"""The replay harness of the policy benchmarks (benchmarks/_policies.py) on scripted pools:
what a replay shows a policy and judges it by, and a verdict that can go either way."""

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

import _policies as policies  # noqa: E402


def _pool(truth, noise=0.2, seeds=3, seed=0):
    rng = np.random.default_rng(seed)
    truth = np.asarray(truth, float)
    table = truth[:, None] + rng.normal(0, noise, (len(truth), seeds))
    cost = np.geomspace(0.2, 2.0, len(truth))
    return policies.Pool(np.arange(len(truth)), cost, {15.0: table}, {}, 15.0)


def test_a_replay_judges_by_the_seeds_the_policy_did_not_see():
    pool = _pool([40, 45, 50])
    replay = policies.Replay(pool, 1)
    table = pool.top1[15.0]
    assert np.array_equal(replay.estimate, table[:, 1])
    assert np.allclose(replay.truth, table[:, [0, 2]].mean(axis=1))
    resampled = pool.take(np.array([2, 2, 0]))
    assert resampled.candidates.tolist() == [2, 2, 0]
    assert np.array_equal(resampled.gflops, pool.gflops[[2, 2, 0]])


def _front(on_front):
    """The candidates on (True) or off (False) the front of the measurements, charged one
    training each (a bootstrap resample may hold a network twice: both copies count)."""

    def choose(replay):
        front = set(policies.measures.true_front(replay.estimate, replay.cost).tolist())
        chosen = np.array([c for c in range(len(replay.pool)) if (c in front) == on_front])
        return policies.Choice(chosen, float(len(chosen)))

    return choose


def test_the_verdict_against_cheapest_k_goes_either_way():
    # neighbours in cost differ by ten points: the ten best measured are the true front, the
    # ten worst are all dominated, the ten cheapest hold both kinds and miss the dearest best
    truth = np.ravel([[50 + 2 * i, 40 + 2 * i] for i in range(10)]).astype(float)
    pool = _pool(truth)
    rules = {"front": _front(True), "dominated": _front(False)}
    table, checks = policies.judge(pool, rules, resamples=40, draws=5, seed=0)
    assert next(c for c in checks[policies.READER] if c.measure == "regret").passes
    assert next(c for c in checks[policies.ORACLE] if c.measure == "regret").passes
    verdicts = table.set_index("row")["verdict"]
    assert verdicts["front"] == "beats cheapest-k by more than its interval"
    assert verdicts["dominated"] == "loses to cheapest-k by more than its interval"
    best = table[(table["policy"] == "front") & (table["row"] == "front")].iloc[0]
    assert best["regret"] == 0.0 and best["front_recall"] == 1.0
