"""Gaussian mixtures: :class:`GaussianMixture` (densities, draws, moments, entropy bounds) and
KL between mixtures (:func:`mixture_kl`, :func:`mixture_kl_bounds`)."""

from gaussdiv.mixtures.divergence import mixture_kl, mixture_kl_bounds
from gaussdiv.mixtures.mixture import GaussianMixture

__all__ = ["GaussianMixture", "mixture_kl", "mixture_kl_bounds"]
