"""ClassStats against numpy's per-class mean/var; merge, all_reduce and the data checks."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.distributed as dist

from cosep_deploy.errors import DataError, SeparabilityError
from cosep_deploy.separability import ClassStats


def data(b: int, shape: tuple[int, ...], classes: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    every = np.tile(np.arange(classes), 2)  # at least 2 samples per class
    labels = np.concatenate([every, rng.integers(0, classes, b - 2 * classes)])
    return rng.normal(loc=3.0, size=(b, *shape)), rng.permutation(labels)


def numpy_stats(x: np.ndarray, y: np.ndarray, classes: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    mean = np.stack([x[y == c].mean(axis=0) for c in range(classes)])
    var = np.stack([x[y == c].var(axis=0, ddof=1) for c in range(classes)])
    return mean, var, np.bincount(y, minlength=classes)


@pytest.mark.parametrize("shape", [(6,), (4, 5)])
def test_batches_equal_one_batch_equal_numpy(shape: tuple[int, ...]) -> None:
    x, y = data(50, shape, 4, seed=0)
    one, many = ClassStats(4), ClassStats(4)
    one.update(torch.from_numpy(x), torch.from_numpy(y))
    for s in range(0, 50, 7):
        many.update(x[s : s + 7].astype(np.float32), y[s : s + 7])  # numpy float32 input is fine too
    mean, var, counts = numpy_stats(x, y, 4)
    np.testing.assert_allclose(one.mean, mean, rtol=1e-12)
    np.testing.assert_allclose(one.var, var, rtol=1e-10)
    np.testing.assert_allclose(many.mean, mean, rtol=1e-6)
    np.testing.assert_allclose(many.var, var, rtol=1e-5)
    np.testing.assert_array_equal(one.counts, counts)
    assert one.mean.shape == (4, *shape) and one.mean.dtype == np.float64 and one.shape == shape


def test_merge_equals_concatenated_update() -> None:
    x, y = data(40, (5,), 3, seed=1)
    a, b, both = ClassStats(3), ClassStats(3), ClassStats(3)
    a.update(x[:15], y[:15])
    b.update(x[15:], y[15:])
    both.update(x, y)
    assert a.merge(b) is a
    np.testing.assert_allclose(a.mean, both.mean, rtol=1e-12)
    np.testing.assert_allclose(a.var, both.var, rtol=1e-10)
    np.testing.assert_array_equal(a.counts, both.counts)
    empty = ClassStats(3)
    empty.merge(both)
    np.testing.assert_allclose(empty.mean, both.mean)


def test_dynamic_class_count_grows_and_merges() -> None:
    a, b = ClassStats(), ClassStats()
    a.update(np.ones((2, 3)), np.array([0, 1]))
    b.update(np.ones((2, 3)), np.array([3, 3]))
    a.merge(b)
    assert a.num_classes == 4
    np.testing.assert_array_equal(a.counts, [1, 1, 0, 2])
    with pytest.raises(DataError, match=r"2 \(0\)"):
        a.check(1)


def test_all_reduce_is_noop_without_process_group() -> None:
    assert not dist.is_initialized()
    x, y = data(20, (3,), 2, seed=2)
    st = ClassStats(2)
    st.update(x, y)
    before = st.mean.copy(), st.var.copy()
    st.all_reduce()
    np.testing.assert_array_equal(st.mean, before[0])
    np.testing.assert_array_equal(st.var, before[1])


def test_all_reduce_in_a_single_process_group(tmp_path: object) -> None:
    # world size 1 with gloo: exercises the collective path (class agreement, flat buffer, unpacking)
    import pathlib

    init = pathlib.Path(str(tmp_path)) / "pg"
    dist.init_process_group("gloo", init_method=f"file://{init}", rank=0, world_size=1)
    try:
        x, y = data(20, (3, 2), 3, seed=3)
        st, ref = ClassStats(), ClassStats()
        st.update(x, y)
        ref.update(x, y)
        st.all_reduce()
        np.testing.assert_allclose(st.mean, ref.mean, rtol=1e-12)
        np.testing.assert_allclose(st.var, ref.var, rtol=1e-12)
        np.testing.assert_array_equal(st.counts, ref.counts)
        with pytest.raises(SeparabilityError, match="no statistics"):
            ClassStats().all_reduce()
    finally:
        dist.destroy_process_group()


def test_minimum_samples_per_class_is_enforced() -> None:
    st = ClassStats(4, name="layer1.0.bn1")
    st.update(np.zeros((5, 2)), np.array([0, 0, 1, 1, 2]))
    with pytest.raises(DataError, match=r"2 of 4 classes.*layer1.0.bn1.*2 \(1\), 3 \(0\)"):
        st.check(min_per_class=2)
    with pytest.raises(DataError, match="fewer than 2"):
        _ = st.var
    with pytest.raises(DataError, match="fewer than 1"):
        _ = st.mean
    st.update(np.zeros((3, 2)), np.array([2, 3, 3]))
    st.check(min_per_class=2)
    with pytest.raises(DataError, match="no activations"):
        ClassStats(2).check()


def test_constant_channel_has_zero_variance() -> None:
    st = ClassStats(2)
    st.update(np.full((6, 2), 1e3), np.array([0, 1, 0, 1, 0, 1]))
    np.testing.assert_array_equal(st.var, 0.0)
    np.testing.assert_array_equal(st.mean, 1e3)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_activations_raise_with_layer_name(bad: float) -> None:
    st = ClassStats(2, name="features.3")
    x = np.ones((4, 3))
    x[2, 1] = bad
    with pytest.raises(DataError, match=r"non-finite.*features\.3"):
        st.update(x, np.array([0, 1, 0, 1]))


@pytest.mark.parametrize(
    ("acts", "labels", "match"),
    [
        (np.ones((4, 3)), np.array([0, 1, 2, 0]), "out of range"),
        (np.ones((4, 3)), np.array([0, -1, 1, 0]), "negative"),
        (np.ones((4, 3)), np.array([0, 1, 1]), r"shape \[4\]"),
        (np.ones((4, 3)), np.array([0.0, 1.0, 1.0, 0.0]), "integer"),
        (np.ones(4), np.array([0, 1, 1, 0]), r"\[B, N\]"),
        ([[1.0]], np.array([0]), "numpy array"),
    ],
)
def test_bad_batches_raise(acts: object, labels: np.ndarray, match: str) -> None:
    with pytest.raises(DataError, match=match):
        ClassStats(2).update(acts, labels)


def test_shape_change_and_bad_merge_raise() -> None:
    st = ClassStats(2)
    st.update(np.ones((2, 3)), np.array([0, 1]))
    with pytest.raises(DataError, match="per-sample shape"):
        st.update(np.ones((2, 4)), np.array([0, 1]))
    other = ClassStats(2)
    other.update(np.ones((2, 4)), np.array([0, 1]))
    with pytest.raises(SeparabilityError, match="cannot merge"):
        st.merge(other)
    with pytest.raises(SeparabilityError, match="num_classes"):
        ClassStats(0)
