"""``gaussdiv kl``: every file layout gives the library's KL, both ways, with its terms."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from cli_helpers import SPD_P, SPD_Q, parse_output, results, write_json

import gaussdiv
from gaussdiv import Gaussian

MEAN_P, MEAN_Q = [0.0, 1.0, -1.0], [1.0, 0.0, 0.0]
P = Gaussian(MEAN_P, SPD_P)
FACTOR = [[1.0], [0.5], [-0.25]]

#: layout name → (file contents, the same Gaussian built with the public constructor)
LAYOUTS = {
    "cov": ({"mean": MEAN_Q, "cov": SPD_Q}, lambda: Gaussian(MEAN_Q, SPD_Q)),
    "precision": ({"mean": MEAN_Q, "precision": np.linalg.inv(SPD_Q).tolist()},
                  lambda: Gaussian.from_precision(MEAN_Q, np.linalg.inv(SPD_Q))),
    "scale_tril": ({"mean": MEAN_Q, "scale_tril": np.linalg.cholesky(SPD_Q).tolist()},
                   lambda: Gaussian.from_scale_tril(MEAN_Q, np.linalg.cholesky(SPD_Q))),
    "precision_tril": (
        {"mean": MEAN_Q, "precision_tril": np.linalg.cholesky(np.linalg.inv(SPD_Q)).tolist()},
        lambda: Gaussian.from_precision_tril(MEAN_Q, np.linalg.cholesky(np.linalg.inv(SPD_Q)))),
    "var": ({"mean": MEAN_Q, "var": [1.0, 2.0, 0.5]},
            lambda: Gaussian.diag(MEAN_Q, var=[1.0, 2.0, 0.5])),
    "isotropic": ({"mean": MEAN_Q, "var": 1.5}, lambda: Gaussian.isotropic(MEAN_Q, 1.5)),
    "std": ({"mean": MEAN_Q, "std": [1.0, 2.0, 0.5]},
            lambda: Gaussian.diag(MEAN_Q, std=[1.0, 2.0, 0.5])),
    "logvar": ({"mean": MEAN_Q, "logvar": [0.1, -0.3, 0.0]},
               lambda: Gaussian.diag(MEAN_Q, logvar=[0.1, -0.3, 0.0])),
    "lowrank": ({"mean": MEAN_Q, "factor": FACTOR, "var": [1.0, 1.0, 2.0]},
                lambda: Gaussian.lowrank(MEAN_Q, FACTOR, [1.0, 1.0, 2.0])),
    "kronecker": ({"mean": [0.0, 1.0, 0.5, -1.0], "a": [[1.0, 0.2], [0.2, 1.0]],
                   "b": [[2.0, 0.0], [0.0, 1.0]]},
                  lambda: Gaussian.kronecker([0.0, 1.0, 0.5, -1.0], [[1.0, 0.2], [0.2, 1.0]],
                                             [[2.0, 0.0], [0.0, 1.0]])),
}
CONSTRUCTOR = {"var": "diag", "isotropic": "isotropic", "std": "diag", "logvar": "diag",
               "lowrank": "lowrank", "kronecker": "kronecker"}


def _kl_json(invoke, p: Path, q: Path) -> dict:
    return parse_output(invoke("kl", p, q, "--json").stdout)


def test_table_shows_both_directions_terms_and_jeffreys(invoke, gaussian_files):
    out = invoke("kl", *gaussian_files).stdout
    q = Gaussian(MEAN_Q, SPD_Q)
    pq, qp = gaussdiv.kl_terms(P, q), gaussdiv.kl_terms(q, P)
    for label in ("KL(P‖Q)", "KL(Q‖P)", "ln|Σ₂|/|Σ₁|", "tr(Σ₂⁻¹Σ₁)", "(μ₁−μ₂)ᵀΣ₂⁻¹(μ₁−μ₂)",
                  "Jeffreys"):
        assert label in out
    assert f"{float(pq.kl):.10g}" in out and f"{float(qp.kl):.10g}" in out
    assert f"{float(pq.trace):.10g}" in out and f"{float(qp.mahalanobis):.10g}" in out
    assert f"{float(pq.kl + qp.kl):.10g}" in out


@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_each_layout_matches_the_public_constructor(invoke, tmp_path, layout):
    if layout in CONSTRUCTOR and not hasattr(Gaussian, CONSTRUCTOR[layout]):
        pytest.skip(f"Gaussian.{CONSTRUCTOR[layout]} not in this version")
    payload, build = LAYOUTS[layout]
    q = build()
    p = P if q.dim == 3 else Gaussian(np.zeros(q.dim), np.eye(q.dim) * 1.5)
    p_file = write_json(tmp_path / "p.json", {"mean": np.asarray(p.mean).tolist(),
                                              "cov": np.asarray(p.covariance_matrix).tolist()})
    q_file = write_json(tmp_path / f"{layout}.json", payload)
    got = _kl_json(invoke, p_file, q_file)
    r = results(got)
    for key, (a, b) in {"kl_pq": (p, q), "kl_qp": (q, p)}.items():
        terms = gaussdiv.kl_terms(a, b)
        assert r[key]["value"] == pytest.approx(float(terms.kl), rel=1e-13, abs=1e-15)
        assert r[key]["terms"]["trace"] == pytest.approx(float(terms.trace), rel=1e-13)
        assert r[key]["terms"]["logdet_ratio"] == pytest.approx(float(terms.logdet_ratio),
                                                                abs=1e-13)
        assert r[key]["terms"]["mahalanobis"] == pytest.approx(float(terms.mahalanobis),
                                                               rel=1e-13)
    assert got["inputs"]["p"]["dim"] == got["inputs"]["q"]["dim"] == q.dim


def test_npz_file_reads_like_json(invoke, tmp_path, gaussian_files):
    npz = tmp_path / "q.npz"
    np.savez(npz, mean=MEAN_Q, cov=SPD_Q)
    from_json = _kl_json(invoke, gaussian_files[0], gaussian_files[1])
    from_npz = _kl_json(invoke, gaussian_files[0], npz)
    assert results(from_npz)["kl_pq"] == results(from_json)["kl_pq"]
    assert from_npz["inputs"]["q"]["constructor"] == "Gaussian"


def test_kl_of_a_gaussian_with_itself_is_exactly_zero(invoke, gaussian_files):
    r = results(_kl_json(invoke, gaussian_files[0], gaussian_files[0]))
    assert r["kl_pq"]["value"] == 0.0 and r["kl_qp"]["value"] == 0.0
    assert r["jeffreys"]["value"] == 0.0


def test_json_names_files_and_constructors(invoke, tmp_path, gaussian_files):
    q_file = write_json(tmp_path / "prec.json",
                        {"mean": MEAN_Q, "precision": np.linalg.inv(SPD_Q).tolist()})
    got = _kl_json(invoke, gaussian_files[0], q_file)
    assert got["command"] == "kl" and got["inputs"]["divergence"] == "kl"
    assert got["inputs"]["p"] == {"path": str(gaussian_files[0]), "constructor": "Gaussian",
                                  "dim": 3}
    assert got["inputs"]["q"]["constructor"] == "Gaussian.from_precision"
    r = results(got)
    assert [x["name"] for x in got["results"]] == ["kl_pq", "kl_qp", "jeffreys"]
    assert [x["label"] for x in got["results"]] == ["KL(P‖Q)", "KL(Q‖P)", "J(P, Q)"]
    assert r["jeffreys"]["value"] == pytest.approx(r["kl_pq"]["value"] + r["kl_qp"]["value"],
                                                   rel=1e-15)


def test_scalars_are_one_dimensional_gaussians(invoke, tmp_path):
    (tmp_path / "p.json").write_text('{"mean": 0, "var": 2}')
    (tmp_path / "q.json").write_text('{"mean": 1, "cov": 1}')
    got = _kl_json(invoke, tmp_path / "p.json", tmp_path / "q.json")
    expected = float(gaussdiv.kl(gaussdiv.Gaussian(0.0, 2.0), gaussdiv.Gaussian(1.0, 1.0)))
    assert results(got)["kl_pq"]["value"] == pytest.approx(expected, rel=1e-15)
    assert got["inputs"]["p"]["dim"] == 1
