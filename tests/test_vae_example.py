"""examples/vae_digits.py --quick runs, writes a readable plot, and gaussdiv's KL never went < 0."""

from __future__ import annotations

import importlib.util
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

pytest.importorskip("torch")
pytest.importorskip("sklearn")
pytest.importorskip("matplotlib")

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "vae_digits.py"


@pytest.fixture(scope="module")
def example() -> Iterator[ModuleType]:
    """examples/vae_digits.py imported as a module (registered while in use: dataclasses need
    their module in sys.modules)."""
    name = "vae_digits_example"
    spec = importlib.util.spec_from_file_location(name, EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        del sys.modules[name]


@pytest.mark.slow
def test_vae_digits_quick(example: ModuleType, tmp_path: Path,
                          capsys: pytest.CaptureFixture[str]) -> None:
    from matplotlib.image import imread

    assert example.main(["--quick", "--out", tmp_path]) == 0

    png = tmp_path / "vae_digits_losses.png"
    image = imread(png)
    assert image.ndim == 3 and image.shape[0] >= 300 and image.shape[1] >= 800

    report = json.loads((tmp_path / "vae_digits_losses.json").read_text(encoding="utf-8"))
    families = {h["family"]: h for h in report["families"]}
    assert set(families) == {"diag", "full"}
    for h in families.values():
        epochs = report["settings"]["epochs"]
        assert len(h["recon"]) == len(h["kl"]) == len(h["elbo"]) == epochs
        assert h["kl_values"] > 0
        assert h["gaussdiv_negative"] == 0
        assert h["gaussdiv_min"] >= 0
        assert min(h["kl"]) >= 0
        # the ELBO is −(reconstruction + KL), and an ELBO of a Bernoulli decoder is ≤ 0
        for recon, kl, elbo in zip(h["recon"], h["kl"], h["elbo"], strict=True):
            assert elbo == pytest.approx(-(recon + kl), rel=1e-12)
            assert elbo < 0
        # against the float64 reference: gaussdiv to float32 rounding, whatever the value
        assert h["gaussdiv_max_rel_error"] < 1e-5

    out = capsys.readouterr().out
    assert "gaussdiv.kl" in out and "KL<0" in out and "\nfull " in out


def test_vae_digits_refuses_to_overwrite_outside_its_folder(example: ModuleType,
                                                            tmp_path: Path) -> None:
    target = tmp_path / "mine.png"
    target.write_bytes(b"not ours")
    with pytest.raises(SystemExit, match="--force"):
        example.main(["--quick", "--out", target])
    assert target.read_bytes() == b"not ours"
