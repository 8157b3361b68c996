"""Bad input: every validation path fails early with the right GaussianError and a useful message.

Each check names the exception class *and* the specifics the message must carry (the argument,
the shapes, the batch index), so a message that loses its detail fails here. Inputs must never
be modified, and later edits to them must never reach a built Gaussian.
"""

from __future__ import annotations

import re

import numpy as np
import pytest

import gaussdiv as gd
from gaussdiv import (
    DimensionMismatchError,
    DtypeError,
    GaussianError,
    NonFiniteError,
    NotPositiveDefiniteError,
    NotSymmetricError,
    ShapeError,
)

I2 = np.eye(2)
I3 = np.eye(3)
SPD2 = np.array([[2.0, 0.5], [0.5, 1.0]])
SPD3 = np.array([[4.0, 1.0, 0.5], [1.0, 3.0, 0.25], [0.5, 0.25, 2.0]])


def g2(batch: tuple[int, ...] = ()) -> gd.Gaussian:
    return gd.Gaussian(np.zeros((*batch, 2)), SPD2)


def g3() -> gd.Gaussian:
    return gd.Gaussian(np.ones(3), SPD3)


def raises(exc: type[Exception], *fragments: str):
    """pytest.raises that also requires every fragment to appear literally in the message."""
    return pytest.raises(exc, match="(?s)" + "".join(f"(?=.*{re.escape(f)})" for f in fragments))


def batch_with(bad: np.ndarray, index: int, size: int = 5, good: np.ndarray = I3) -> np.ndarray:
    out = np.stack([good] * size)
    out[index] = bad
    return out


# --------------------------------------------------------------------------- shapes
class TestShapes:
    def test_mean_scalar(self):
        with raises(ShapeError, "mean", "(..., d)", "scalar"):
            gd.Gaussian(0.0, I2)

    def test_mean_scalar_even_when_d_is_one(self):
        with raises(ShapeError, "mean", "scalar"):
            gd.Gaussian(1.0, np.eye(1))

    def test_cov_not_square(self):
        with raises(ShapeError, "cov", "(..., d, d)", "(2, 3)"):
            gd.Gaussian(np.zeros(2), np.ones((2, 3)))

    def test_cov_not_square_batched(self):
        with raises(ShapeError, "cov", "(4, 3, 2)"):
            gd.Gaussian(np.zeros(2), np.ones((4, 3, 2)))

    def test_cov_one_dimensional(self):
        with raises(ShapeError, "cov", "(..., d, d)", "(2,)"):
            gd.Gaussian(np.zeros(2), np.ones(2))

    def test_cov_scalar(self):
        with raises(ShapeError, "cov", "()"):
            gd.Gaussian(np.zeros(1), 1.0)

    def test_zero_size_dimension(self):
        with raises(ShapeError, "cov", "d ≥ 1", "(0, 0)"):
            gd.Gaussian(np.zeros(0), np.zeros((0, 0)))

    def test_zero_size_mean(self):
        with raises(ShapeError, "mean", "d ≥ 1", "(0,)"):
            gd.Gaussian(np.zeros(0), np.eye(1))

    @pytest.mark.parametrize(
        ("ctor", "name"),
        [(gd.Gaussian.from_precision, "precision"), (gd.Gaussian.from_scale_tril, "scale_tril"),
         (gd.Gaussian.from_precision_tril, "precision_tril")],
    )
    def test_constructors_name_their_argument(self, ctor, name):
        with raises(ShapeError, name, "(2, 3)"):
            ctor(np.zeros(2), np.ones((2, 3)))
        with raises(ShapeError, name, "d ≥ 1"):
            ctor(np.zeros(0), np.zeros((0, 0)))

    def test_mean_cov_dimension_mismatch(self):
        with raises(DimensionMismatchError, "mean", "d=3", "(3,)", "2×2"):
            gd.Gaussian(np.zeros(3), I2)

    def test_mean_cov_dimension_mismatch_batched(self):
        with raises(DimensionMismatchError, "d=3", "(5, 3)", "2×2"):
            gd.Gaussian(np.zeros((5, 3)), np.stack([I2] * 5))

    def test_mean_cov_batch_shapes_do_not_broadcast(self):
        with raises(ShapeError, "batch shapes do not broadcast", "(3,)", "(4,)"):
            gd.Gaussian(np.zeros((3, 2)), np.stack([I2] * 4))

    def test_mean_cov_batch_shapes_broadcast(self):
        p = gd.Gaussian(np.zeros((3, 1, 2)), np.stack([I2] * 4))
        assert p.batch_shape == (3, 4)


class TestPairs:
    @pytest.mark.parametrize(
        "call",
        [gd.kl, gd.kl_terms, gd.cross_entropy,
         lambda p, q: gd.log_ratio(p, q, np.zeros(p.dim)),
         lambda p, q: gd.kl_mc(p, q, n=10, seed=0)],
        ids=["kl", "kl_terms", "cross_entropy", "log_ratio", "kl_mc"],
    )
    def test_dimension_mismatch(self, call):
        with raises(DimensionMismatchError, "p has d=3", "q has d=2"):
            call(g3(), g2())
        with raises(DimensionMismatchError, "p has d=2", "q has d=3"):
            call(g2(), g3())

    @pytest.mark.parametrize(
        "call",
        [gd.kl, gd.kl_terms, gd.cross_entropy,
         lambda p, q: gd.log_ratio(p, q, np.zeros(2)),
         lambda p, q: gd.kl_mc(p, q, n=10, seed=0)],
        ids=["kl", "kl_terms", "cross_entropy", "log_ratio", "kl_mc"],
    )
    def test_batch_shapes_do_not_broadcast(self, call):
        with raises(ShapeError, "do not broadcast", "(3,)", "(4,)"):
            call(g2((3,)), g2((4,)))
        with raises(ShapeError, "do not broadcast", "(2, 3)", "(2,)"):
            call(g2((2, 3)), g2((2,)))

    @pytest.mark.parametrize("call", [gd.kl, gd.kl_terms, lambda p, q: gd.kl_mc(p, q, 10, 0),
                                      lambda p, q: gd.log_ratio(p, q, np.zeros(2))],
                             ids=["kl", "kl_terms", "kl_mc", "log_ratio"])
    def test_non_gaussian_arguments_are_type_errors(self, call):
        with raises(TypeError, "q must be a gaussdiv.Gaussian, got tuple"):
            call(g2(), (np.zeros(2), I2))
        with raises(TypeError, "p must be a gaussdiv.Gaussian, got str"):
            call("p", g2())

    def test_cross_entropy_non_gaussian_q_is_a_type_error(self):
        with raises(TypeError, "q must be a gaussdiv.Gaussian"):
            gd.cross_entropy(g2(), (np.zeros(2), I2))

    @pytest.mark.parametrize("call", [lambda a: gd.log_prob(a, np.zeros(2)), gd.entropy,
                                      lambda a: gd.sample(a, 3),
                                      lambda a: gd.cross_entropy(a, g2())],
                             ids=["log_prob", "entropy", "sample", "cross_entropy"])
    def test_single_gaussian_functions_reject_non_gaussians(self, call):
        with raises(TypeError, "must be a gaussdiv.Gaussian"):
            call((np.zeros(2), I2))


# --------------------------------------------------------------------------- symmetry
class TestSymmetry:
    def test_not_symmetric(self):
        cov = np.array([[2.0, 0.5], [0.4, 1.0]])
        with raises(NotSymmetricError, "cov", "not symmetric", "0.1", "tolerance"):
            gd.Gaussian(np.zeros(2), cov)

    def test_not_symmetric_unbatched_has_no_batch_index(self):
        with pytest.raises(NotSymmetricError) as info:
            gd.Gaussian(np.zeros(2), np.array([[2.0, 0.5], [0.4, 1.0]]))
        assert "batch index" not in str(info.value)

    def test_not_symmetric_in_batch_names_index(self):
        bad = SPD3.copy()
        bad[0, 2] += 0.3
        with raises(NotSymmetricError, "cov", "batch index 2"):
            gd.Gaussian(np.zeros(3), batch_with(bad, 2, good=SPD3))

    def test_not_symmetric_in_2d_batch_names_index(self):
        covs = np.broadcast_to(SPD3, (2, 4, 3, 3)).copy()
        covs[1, 3, 1, 0] += 1.0
        with raises(NotSymmetricError, "batch index (1, 3)"):
            gd.Gaussian(np.zeros(3), covs)

    def test_precision_not_symmetric_names_precision(self):
        with raises(NotSymmetricError, "precision"):
            gd.Gaussian.from_precision(np.zeros(2), np.array([[2.0, 0.5], [0.0, 1.0]]))

    @pytest.mark.parametrize("scale", [1e-200, 1e-8, 1.0, 1e8, 1e200])
    def test_tiny_relative_asymmetry_is_accepted(self, scale):
        # 1e-14 relative: far inside the √eps ≈ 1.5e-8 tolerance, at every scale.
        cov = SPD3 * scale
        cov[0, 1] *= 1 + 1e-14
        p = gd.Gaussian(np.zeros(3), cov)
        q = gd.Gaussian(np.zeros(3), SPD3 * scale)
        value = gd.kl(p, q)
        assert np.isfinite(value) and 0 <= value < 1e-12

    @pytest.mark.parametrize("scale", [1e-200, 1.0, 1e200])
    def test_asymmetry_above_tolerance_is_rejected_at_every_scale(self, scale):
        cov = SPD3 * scale
        cov[0, 1] *= 1 + 1e-6
        with raises(NotSymmetricError, "cov"):
            gd.Gaussian(np.zeros(3), cov)


# --------------------------------------------------------------------------- definiteness
class TestPositiveDefinite:
    def test_indefinite(self):
        with raises(NotPositiveDefiniteError, "cov", "not positive definite",
                    "smallest eigenvalue is -1"):
            gd.Gaussian(np.zeros(2), np.array([[1.0, 2.0], [2.0, 1.0]]))

    def test_negative_definite(self):
        with raises(NotPositiveDefiniteError, "cov", "smallest eigenvalue is -3"):
            gd.Gaussian(np.zeros(2), -np.diag([1.0, 3.0]))

    @pytest.mark.parametrize("cov", [np.ones((3, 3)), np.zeros((3, 3)), np.diag([1.0, 0.0, 2.0])],
                             ids=["rank-one", "zero", "zero-pivot"])
    def test_singular(self, cov):
        with raises(NotPositiveDefiniteError, "cov", "not positive definite"):
            gd.Gaussian(np.zeros(3), cov)

    def test_numerically_singular_explains_precision(self):
        # Eigenvalues 1 and 1e-17 relative: positive in exact arithmetic, unresolvable in float64.
        u = np.array([[1.0, 1.0], [1.0, -1.0]]) / np.sqrt(2)
        cov = u @ np.diag([1.0, 1e-17]) @ u.T
        cov = (cov + cov.T) / 2
        with pytest.raises(NotPositiveDefiniteError, match="cov is not positive definite") as info:
            gd.Gaussian(np.zeros(2), cov)
        message = str(info.value)
        assert "numerically singular" in message or "smallest eigenvalue" in message

    def test_batch_of_five_names_element_two(self):
        bad = np.diag([1.0, -0.5, 1.0])
        with pytest.raises(NotPositiveDefiniteError, match="cov is not positive definite") as info:
            gd.Gaussian(np.zeros(3), batch_with(bad, 2))
        message = str(info.value)
        assert "batch index 2" in message
        assert "-0.5" in message

    def test_singular_in_batch_names_index(self):
        with raises(NotPositiveDefiniteError, "batch index 4"):
            gd.Gaussian(np.zeros(3), batch_with(np.ones((3, 3)), 4))

    def test_2d_batch_names_tuple_index(self):
        covs = np.broadcast_to(I3, (2, 3, 3, 3)).copy()
        covs[1, 2] = -I3
        with raises(NotPositiveDefiniteError, "batch index (1, 2)"):
            gd.Gaussian(np.zeros(3), covs)

    def test_unbatched_message_has_no_batch_index(self):
        with pytest.raises(NotPositiveDefiniteError) as info:
            gd.Gaussian(np.zeros(2), -I2)
        assert "batch index" not in str(info.value)

    def test_batch_names_first_offending_element(self):
        covs = np.stack([I3, np.diag([1.0, -0.1, 1.0]), I3, -I3, I3])
        with raises(NotPositiveDefiniteError, "batch index 1"):
            gd.Gaussian(np.zeros(3), covs)

    def test_precision_not_positive_definite(self):
        with raises(NotPositiveDefiniteError, "precision", "not positive definite",
                    "smallest eigenvalue is -1"):
            gd.Gaussian.from_precision(np.zeros(2), np.array([[1.0, 2.0], [2.0, 1.0]]))

    def test_precision_not_positive_definite_in_batch(self):
        with raises(NotPositiveDefiniteError, "precision", "batch index 3"):
            gd.Gaussian.from_precision(np.zeros(3), batch_with(-I3, 3))

    def test_float32_singular_is_rejected(self):
        with raises(NotPositiveDefiniteError, "cov", "not positive definite"):
            gd.Gaussian(np.zeros(2, np.float32), np.ones((2, 2), np.float32))

    # Regression: Cholesky's last pivot of these exactly singular matrices is a rounding residue
    # (~2e-8), not 0; they used to be accepted (np.full((2, 2), 2.0) gave KL to N(0, I) ≈ 2e15).
    @pytest.mark.parametrize(("value", "dtype"), [(2.0, np.float64), (7.0, np.float64),
                                                  (0.3, np.float64), (3.0, np.float64),
                                                  (0.5, np.float32)])
    def test_exactly_singular_is_rejected_whatever_the_rounding(self, value, dtype):
        with raises(NotPositiveDefiniteError, "cov", "not positive definite"):
            gd.Gaussian(np.zeros(2, dtype), np.full((2, 2), value, dtype))

    @pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")
    def test_accepted_precision_pairs_with_covariance_or_blames_precision(self):
        # Precisions with eigenvalues (1, 1, 1e-15 or 1e-16) in random orientations: each is
        # either rejected at construction, or every KL with it is a finite number ≥ 0, or the
        # error names "precision" (the caller never passed a "cov").
        q = gd.Gaussian(np.zeros(3), I3)
        for smallest in (1e-15, 1e-16):
            for seed in range(100):
                rng = np.random.default_rng(seed)
                u, _ = np.linalg.qr(rng.standard_normal((3, 3)))
                lam = u @ np.diag([1.0, 1.0, smallest]) @ u.T
                lam = (lam + lam.T) / 2
                try:
                    p = gd.Gaussian.from_precision(np.zeros(3), lam)
                except NotPositiveDefiniteError as exc:
                    assert "precision" in str(exc)
                    continue
                for first, second in ((p, q), (q, p)):
                    try:
                        value = gd.kl(first, second)
                    except GaussianError as exc:
                        assert "precision" in str(exc), (smallest, seed, str(exc))
                    else:
                        assert np.isfinite(value) and value >= 0, (smallest, seed, value)


# --------------------------------------------------------------------------- finiteness
class TestNonFinite:
    @pytest.mark.parametrize(("bad", "kind"), [(np.nan, "NaN"), (np.inf, "infinite"),
                                               (-np.inf, "infinite")])
    def test_mean(self, bad, kind):
        mean = np.zeros((4, 2))
        mean[3, 1] = bad
        with raises(NonFiniteError, "mean", kind, "(3, 1)"):
            gd.Gaussian(mean, I2)

    @pytest.mark.parametrize(("bad", "kind"), [(np.nan, "NaN"), (np.inf, "infinite")])
    def test_cov(self, bad, kind):
        cov = SPD2.copy()
        cov[1, 1] = bad
        with raises(NonFiniteError, "cov", kind, "(1, 1)"):
            gd.Gaussian(np.zeros(2), cov)

    def test_cov_in_batch(self):
        covs = np.stack([I2] * 3)
        covs[2, 0, 1] = covs[2, 1, 0] = np.nan
        with raises(NonFiniteError, "cov", "NaN", "(2, 0, 1)"):
            gd.Gaussian(np.zeros(2), covs)

    @pytest.mark.parametrize(
        ("ctor", "name"),
        [(gd.Gaussian.from_precision, "precision"), (gd.Gaussian.from_scale_tril, "scale_tril"),
         (gd.Gaussian.from_precision_tril, "precision_tril")],
    )
    def test_other_parameterisations(self, ctor, name):
        m = I2.copy()
        m[0, 0] = np.nan
        with raises(NonFiniteError, name, "NaN", "(0, 0)"):
            ctor(np.zeros(2), m)

    @pytest.mark.parametrize(("bad", "kind"), [(np.nan, "NaN"), (np.inf, "infinite")])
    @pytest.mark.parametrize("call", [lambda x: gd.log_prob(g2(), x),
                                      lambda x: gd.log_ratio(g2(), g2(), x)],
                             ids=["log_prob", "log_ratio"])
    def test_x(self, call, bad, kind):
        x = np.zeros((5, 2))
        x[4, 0] = bad
        with raises(NonFiniteError, "x", kind, "(4, 0)"):
            call(x)

    @pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")
    def test_x_overflowing_float32_is_explained(self):
        p = gd.Gaussian(np.zeros(2, np.float32), np.eye(2, dtype=np.float32))
        with pytest.raises(GaussianError) as info:
            gd.log_prob(p, np.array([1e300, 0.0]))
        assert "infinite entry" not in str(info.value)


# --------------------------------------------------------------------------- dtypes
BAD_DTYPES = [
    (np.bool_, "boolean"),
    (np.complex128, "complex"),
    (np.complex64, "complex"),
    (object, "object"),
]


class TestDtypes:
    def test_integer_input_accepted_as_float64(self):
        p = gd.Gaussian(np.array([1, 2]), np.array([[2, 1], [1, 2]]))
        q = gd.Gaussian([0, 0], [[1, 0], [0, 1]])
        assert p.dtype == np.float64 and p.mean.dtype == np.float64
        value = gd.kl(p, q)
        assert value.dtype == np.float64
        ref = gd.kl(gd.Gaussian(np.array([1.0, 2.0]), np.array([[2.0, 1.0], [1.0, 2.0]])),
                    gd.Gaussian(np.zeros(2), I2))
        assert value == ref
        assert gd.log_prob(p, np.array([1, 1])).dtype == np.float64
        assert gd.log_ratio(p, q, [1, 1]).dtype == np.float64

    @pytest.mark.parametrize("int_dtype", [np.int8, np.int32, np.int64, np.uint8, np.uint64])
    def test_integer_kinds(self, int_dtype):
        p = gd.Gaussian(np.zeros(2, int_dtype), (2 * I2).astype(int_dtype))
        assert p.dtype == np.float64
        assert gd.entropy(p).dtype == np.float64

    def test_integer_mean_with_float32_cov_computes_in_float64(self):
        p = gd.Gaussian(np.zeros(2, np.int32), I2.astype(np.float32))
        assert p.dtype == np.float64

    @pytest.mark.parametrize(("dtype", "word"), BAD_DTYPES)
    def test_bad_cov_dtype(self, dtype, word):
        with raises(DtypeError, "cov", word):
            gd.Gaussian(np.zeros(2), I2.astype(dtype))

    @pytest.mark.parametrize(("dtype", "word"), BAD_DTYPES)
    def test_bad_mean_dtype(self, dtype, word):
        with raises(DtypeError, "mean", word):
            gd.Gaussian(np.zeros(2, dtype=dtype), I2)

    @pytest.mark.parametrize(("dtype", "word"), BAD_DTYPES)
    def test_bad_x_dtype(self, dtype, word):
        with raises(DtypeError, "x", word):
            gd.log_prob(g2(), np.zeros(2, dtype=dtype))
        with raises(DtypeError, "x", word):
            gd.log_ratio(g2(), g2(), np.zeros(2, dtype=dtype))

    @pytest.mark.parametrize(
        ("ctor", "name"),
        [(gd.Gaussian.from_precision, "precision"), (gd.Gaussian.from_scale_tril, "scale_tril"),
         (gd.Gaussian.from_precision_tril, "precision_tril")],
    )
    @pytest.mark.parametrize(("dtype", "word"), BAD_DTYPES)
    def test_bad_dtype_other_parameterisations(self, ctor, name, dtype, word):
        with raises(DtypeError, name, word):
            ctor(np.zeros(2), I2.astype(dtype))

    def test_complex_with_zero_imaginary_part_is_still_rejected(self):
        with raises(DtypeError, "cov", "complex"):
            gd.Gaussian(np.zeros(2), I2 + 0j)

    def test_python_bool_lists_rejected(self):
        with raises(DtypeError, "mean", "boolean"):
            gd.Gaussian([True, False], I2)

    def test_strings_rejected(self):
        with raises(DtypeError, "mean", "<U"):
            gd.Gaussian(["a", "b"], I2)
        with raises(DtypeError, "cov", "<U"):
            gd.Gaussian(np.zeros(2), [["1", "0"], ["0", "1"]])
        with raises(DtypeError, "x"):
            gd.log_prob(g2(), ["0", "0"])

    def test_datetime_rejected(self):
        with raises(DtypeError, "mean", "datetime64"):
            gd.Gaussian(np.array(["2020-01-01", "2020-01-02"], dtype="datetime64[D]"), I2)

    def test_float64_mean_with_float32_structure_is_rejected(self):
        structure = gd.FullCovariance.from_matrix(I2.astype(np.float32), name="cov")
        with raises(DtypeError, "mean", "float64", "float32"):
            gd.Gaussian(np.zeros(2), structure)

    def test_ragged_mean_is_a_gaussian_error(self):
        with raises(GaussianError, "mean"):
            gd.Gaussian([[1.0, 2.0], [3.0]], I2)


# --------------------------------------------------------------------------- triangular factors
class TestFactors:
    @pytest.mark.parametrize("ctor_name", ["from_scale_tril", "from_precision_tril"])
    def test_non_zero_upper_part(self, ctor_name):
        name = ctor_name.removeprefix("from_")
        t = np.array([[1.0, 1e-300], [0.5, 1.0]])  # even a subnormal-sized entry counts
        with raises(ShapeError, name, "lower triangular", "above the diagonal"):
            getattr(gd.Gaussian, ctor_name)(np.zeros(2), t)

    def test_non_zero_upper_part_in_batch(self):
        ts = np.stack([I3] * 4)
        ts[3, 0, 2] = 0.1
        with raises(ShapeError, "scale_tril", "batch index 3"):
            gd.Gaussian.from_scale_tril(np.zeros(3), ts)

    @pytest.mark.parametrize("ctor_name", ["from_scale_tril", "from_precision_tril"])
    @pytest.mark.parametrize(("diag", "shown"), [([1.0, -2.0], "-2"), ([0.0, 1.0], "is 0")])
    def test_non_positive_diagonal(self, ctor_name, diag, shown):
        name = ctor_name.removeprefix("from_")
        with raises(NotPositiveDefiniteError, name, "positive diagonal", shown):
            getattr(gd.Gaussian, ctor_name)(np.zeros(2), np.diag(diag))

    def test_non_positive_diagonal_in_batch(self):
        ts = np.stack([I3] * 5)
        ts[2, 1, 1] = -1.0
        with raises(NotPositiveDefiniteError, "precision_tril", "batch index 2", "-1"):
            gd.Gaussian.from_precision_tril(np.zeros(3), ts)

    def test_full_matrix_given_as_scale_tril_is_rejected(self):
        with raises(ShapeError, "scale_tril", "lower triangular"):
            gd.Gaussian.from_scale_tril(np.zeros(2), SPD2)


# --------------------------------------------------------------------------- points
class TestPoints:
    @pytest.mark.parametrize("call", [lambda x: gd.log_prob(g2(), x),
                                      lambda x: gd.log_ratio(g2(), g2(), x)],
                             ids=["log_prob", "log_ratio"])
    def test_x_wrong_dimension(self, call):
        with raises(DimensionMismatchError, "x", "dimension 3", "(4, 3)", "d=2"):
            call(np.zeros((4, 3)))

    def test_x_scalar(self):
        with raises(ShapeError, "x", "scalar"):
            gd.log_prob(g2(), 1.0)

    def test_x_zero_size(self):
        with raises(ShapeError, "x", "(5, 0)"):
            gd.log_prob(g2(), np.zeros((5, 0)))

    def test_x_batch_broadcasts_with_gaussian(self):
        assert gd.log_prob(g2((4,)), np.zeros((3, 1, 2))).shape == (3, 4)

    @pytest.mark.parametrize("call", [lambda x: gd.log_prob(g2((4,)), x),
                                      lambda x: gd.log_ratio(g2((4,)), g2(), x)],
                             ids=["log_prob", "log_ratio"])
    def test_x_batch_not_broadcasting_is_a_shape_error(self, call):
        with raises(ShapeError, "x", "(3,)", "(4,)"):
            call(np.zeros((3, 2)))


# --------------------------------------------------------------------------- counts
BAD_COUNTS = [0, -1, -(2**40), 2.0, 1e5, True, False, "10", None, np.float64(3.0)]


class TestCounts:
    @pytest.mark.parametrize("n", BAD_COUNTS, ids=repr)
    def test_sample_bad_n(self, n):
        message = rf"^n must be a positive integer, got {re.escape(repr(n))}$"
        with pytest.raises(ValueError, match=message):
            gd.sample(g2(), n, seed=0)

    @pytest.mark.parametrize("n", BAD_COUNTS, ids=repr)
    def test_kl_mc_bad_n(self, n):
        with pytest.raises(ValueError, match=r"^n must be a positive integer"):
            gd.kl_mc(g2(), g2(), n=n, seed=0)

    @pytest.mark.parametrize("chunk", BAD_COUNTS, ids=repr)
    def test_kl_mc_bad_chunk(self, chunk):
        with pytest.raises(ValueError, match=r"^chunk must be a positive integer"):
            gd.kl_mc(g2(), g2(), n=10, seed=0, chunk=chunk)

    def test_numpy_integers_accepted(self):
        assert gd.sample(g2(), np.int64(3), seed=0).shape == (3, 2)
        assert gd.kl_mc(g2(), g2(), n=np.int32(5), chunk=np.uint8(2), seed=0).n == 5

    @pytest.mark.parametrize("call", [lambda: gd.sample(g2(), 0),
                                      lambda: gd.kl_mc(g2(), g2(), n=-1),
                                      lambda: gd.kl_mc(g2(), g2(), n=10, chunk=2.0)],
                             ids=["sample-n", "kl_mc-n", "kl_mc-chunk"])
    def test_bad_count_is_a_gaussian_error(self, call):
        with pytest.raises(GaussianError):
            call()


# --------------------------------------------------------------------------- hierarchy
ERROR_CLASSES = [ShapeError, DimensionMismatchError, DtypeError, NonFiniteError,
                 NotSymmetricError, NotPositiveDefiniteError, gd.BackendMismatchError]


@pytest.mark.parametrize("cls", ERROR_CLASSES)
def test_error_classes_are_gaussian_and_value_errors(cls):
    assert issubclass(cls, GaussianError)
    assert issubclass(cls, ValueError)
    assert not issubclass(cls, np.linalg.LinAlgError)


def test_dimension_mismatch_is_a_shape_error():
    assert issubclass(DimensionMismatchError, ShapeError)


BAD_CALLS = {
    "mean-scalar": lambda: gd.Gaussian(0.0, I2),
    "cov-1d": lambda: gd.Gaussian(np.zeros(2), np.ones(2)),
    "cov-d0": lambda: gd.Gaussian(np.zeros(0), np.zeros((0, 0))),
    "mean-cov-dim": lambda: gd.Gaussian(np.zeros(3), I2),
    "batch": lambda: gd.Gaussian(np.zeros((3, 2)), np.stack([I2] * 4)),
    "asym": lambda: gd.Gaussian(np.zeros(2), np.array([[1.0, 0.0], [1.0, 1.0]])),
    "indefinite": lambda: gd.Gaussian(np.zeros(2), np.array([[1.0, 2.0], [2.0, 1.0]])),
    "singular": lambda: gd.Gaussian(np.zeros(3), np.ones((3, 3))),
    "zero": lambda: gd.Gaussian(np.zeros(3), np.zeros((3, 3))),
    "huge-singular": lambda: gd.Gaussian(np.zeros(2), np.full((2, 2), 1e308)),
    "tiny-singular": lambda: gd.Gaussian(np.zeros(2), np.full((2, 2), 1e-308)),
    "batch-indefinite": lambda: gd.Gaussian(np.zeros(3), batch_with(-I3, 2)),
    "batch-indefinite-f32": lambda: gd.Gaussian(np.zeros(3, np.float32),
                                                batch_with(-I3, 2).astype(np.float32)),
    "nan-cov": lambda: gd.Gaussian(np.zeros(2), np.full((2, 2), np.nan)),
    "inf-mean": lambda: gd.Gaussian(np.array([np.inf, 0.0]), I2),
    "bool": lambda: gd.Gaussian(np.zeros(2), I2.astype(bool)),
    "complex": lambda: gd.Gaussian(np.zeros(2), I2.astype(complex)),
    "object": lambda: gd.Gaussian(np.zeros(2), I2.astype(object)),
    "precision-indefinite": lambda: gd.Gaussian.from_precision(np.zeros(2), -I2),
    "precision-singular": lambda: gd.Gaussian.from_precision(np.zeros(3), np.ones((3, 3))),
    "tril-upper": lambda: gd.Gaussian.from_scale_tril(np.zeros(2), np.ones((2, 2))),
    "tril-diag": lambda: gd.Gaussian.from_scale_tril(np.zeros(2), np.diag([1.0, 0.0])),
    "ptril-diag": lambda: gd.Gaussian.from_precision_tril(np.zeros(2), np.diag([-1.0, 1.0])),
    "kl-dim": lambda: gd.kl(g2(), g3()),
    "kl-batch": lambda: gd.kl(g2((3,)), g2((4,))),
    "ce-dim": lambda: gd.cross_entropy(g3(), g2()),
    "log_ratio-dim": lambda: gd.log_ratio(g3(), g2(), np.zeros(3)),
    "kl_mc-dim": lambda: gd.kl_mc(g2(), g3(), 10, 0),
    "x-dim": lambda: gd.log_prob(g2(), np.zeros(3)),
    "x-nan": lambda: gd.log_prob(g2(), np.array([np.nan, 0.0])),
    "x-bool": lambda: gd.log_prob(g2(), np.zeros(2, bool)),
}


@pytest.mark.parametrize("call", list(BAD_CALLS.values()), ids=list(BAD_CALLS))
def test_every_bad_input_is_a_gaussian_error_without_linalg_leak(call):
    with pytest.raises(GaussianError) as info:
        call()
    exc = info.value
    assert isinstance(exc, ValueError)
    assert not isinstance(exc, np.linalg.LinAlgError)
    # Nothing of LAPACK's wording, and no LinAlgError hiding in the exception chain.
    message = str(exc)
    for lapack_phrase in ("Matrix is not positive definite", "leading minor", "LAPACK",
                          "Singular matrix", "potrf", "nan", "inf "):
        assert lapack_phrase not in message, message
    for linked in (exc.__cause__, exc.__context__):
        assert not isinstance(linked, np.linalg.LinAlgError)


# --------------------------------------------------------------------------- no aliasing
def _inputs():
    rng = np.random.default_rng(42)
    a = rng.standard_normal((3, 3, 3))
    cov1 = a @ np.swapaxes(a, -1, -2) + np.eye(3)
    b = rng.standard_normal((3, 3))
    cov2 = b @ b.T + np.eye(3)
    return {
        "mean1": rng.standard_normal((3, 3)),
        "cov1": cov1,
        "mean2": rng.standard_normal(3),
        "cov2": cov2,
        "tril": np.linalg.cholesky(cov2),
        "prec": np.linalg.inv(cov2),
        "ptril": np.linalg.cholesky(np.linalg.inv(cov2)),
        "x": rng.standard_normal((5, 3, 3)),
    }


def test_no_public_function_modifies_its_inputs():
    arrays = _inputs()
    before = {k: v.copy() for k, v in arrays.items()}
    a = arrays
    p = gd.Gaussian(a["mean1"], a["cov1"])
    gaussians = [
        gd.Gaussian(a["mean2"], a["cov2"]),
        gd.Gaussian.from_precision(a["mean2"], a["prec"]),
        gd.Gaussian.from_scale_tril(a["mean2"], a["tril"]),
        gd.Gaussian.from_precision_tril(a["mean2"], a["ptril"]),
    ]
    for q in gaussians:
        for first, second in ((p, q), (q, p), (q, q)):
            gd.kl(first, second)
            gd.kl_terms(first, second)
            gd.cross_entropy(first, second)
            gd.log_ratio(first, second, a["x"])
        # (kl_mc(q, p) with the batch only on p is a separate bug, see test_montecarlo.py.)
        gd.kl_mc(p, q, n=50, seed=0, chunk=16)
        gd.kl_mc(q, q, n=50, seed=0, chunk=16)
        gd.entropy(q)
        gd.log_prob(q, a["x"])
        gd.sample(q, 5, seed=0)
        assert q.covariance_matrix.shape[-1] == q.dim
    gd.log_prob(p, a["x"])
    for key, value in arrays.items():
        np.testing.assert_array_equal(value, before[key], err_msg=key)
        assert value.flags.writeable, key


def test_read_only_and_strided_inputs_are_accepted():
    a = _inputs()
    for value in a.values():
        value.flags.writeable = False
    p = gd.Gaussian(a["mean1"], a["cov1"])
    q = gd.Gaussian.from_scale_tril(a["mean2"], a["tril"])
    assert np.all(np.isfinite(gd.kl(p, q)))
    assert np.all(np.isfinite(gd.log_ratio(p, q, a["x"])))
    # Fortran order and negative strides describe the same matrices.
    f = gd.Gaussian(np.asfortranarray(a["mean1"]), np.asfortranarray(a["cov1"]))
    rev = gd.Gaussian(a["mean1"][:, ::-1][:, ::-1], a["cov1"][:, ::-1, ::-1][:, ::-1, ::-1])
    np.testing.assert_array_equal(gd.kl(f, q), gd.kl(p, q))
    np.testing.assert_array_equal(gd.kl(rev, q), gd.kl(p, q))


@pytest.mark.parametrize(
    ("ctor", "key"),
    [(gd.Gaussian, "cov2"), (gd.Gaussian.from_precision, "prec"),
     (gd.Gaussian.from_scale_tril, "tril"), (gd.Gaussian.from_precision_tril, "ptril")],
)
def test_later_edits_to_caller_arrays_do_not_reach_the_gaussian(ctor, key):
    a = _inputs()
    mean, matrix = a["mean2"], a[key]
    p = ctor(mean, matrix)
    ref = gd.Gaussian(np.zeros(3), np.eye(3))
    kl_before = gd.kl(p, ref)
    cov_before = np.array(p.covariance_matrix, copy=True)
    mean_before = np.array(p.mean, copy=True)
    mean[:] = 1e6
    matrix[:] = np.nan
    np.testing.assert_array_equal(p.mean, mean_before)
    np.testing.assert_array_equal(p.covariance_matrix, cov_before)
    assert gd.kl(p, ref) == kl_before


def test_arrays_nothing_can_write_to_are_kept_without_a_copy():
    a = _inputs()
    mean, cov = a["mean2"], a["cov2"]
    for value in (mean, cov):
        value.flags.writeable = False
    p = gd.Gaussian(mean, cov)
    assert np.shares_memory(p.mean, mean) and np.shares_memory(p.cov.matrix, cov)
    # A read-only view of memory the caller can still write through is copied.
    writable = a["mean1"]
    view = writable.view()
    view.flags.writeable = False
    q = gd.Gaussian(view, a["cov1"])
    assert not np.shares_memory(q.mean, writable)
    before = gd.kl(p, q)
    writable[:] = 1e6
    np.testing.assert_array_equal(gd.kl(p, q), before)


def test_integer_inputs_are_copied_too():
    mean = np.array([1, 2])
    cov = np.array([[2, 1], [1, 2]])
    p = gd.Gaussian(mean, cov)
    mean[0] = 100
    cov[0, 0] = -5
    assert p.mean[0] == 1.0
    assert p.covariance_matrix[0, 0] == 2.0


def test_gaussian_is_immutable():
    p = g2()
    with pytest.raises(AttributeError, match="immutable"):
        p.mean = np.ones(2)
    with pytest.raises(ValueError, match="read-only"):
        p.mean[0] = 1.0
    with pytest.raises(ValueError, match="read-only"):
        p.covariance_matrix[0, 0] = 5.0


def test_badly_scaled_but_well_conditioned_is_accepted_and_exact():
    """Variances 10^±150 in correlated 2×2 blocks: κ ≈ 1e300, yet Cholesky is exact after
    diagonal scaling, so the covariance is valid. KL against c·Σ is d/2 (1/c − 1 + ln c)."""
    rng = np.random.default_rng(0)
    d = 400
    var = 10.0 ** rng.uniform(-150, 150, d)
    cov = np.diag(var)
    for i in range(0, d, 2):
        cov[i, i + 1] = cov[i + 1, i] = 0.5 * np.sqrt(var[i] * var[i + 1])
    perm = rng.permutation(d)
    cov = cov[perm][:, perm]
    value = gd.kl(gd.Gaussian(np.zeros(d), cov), gd.Gaussian(np.zeros(d), 1.25 * cov))
    exact = d / 2 * (1 / 1.25 - 1 + np.log(1.25))  # float64 evaluation, no cancellation here
    np.testing.assert_allclose(value, exact, rtol=1e-13)
