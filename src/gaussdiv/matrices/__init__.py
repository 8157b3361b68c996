"""Divergence matrices between many Gaussians: :func:`pairwise` (every P_i against every Q_j)
and :func:`pairwise_topk` (the k nearest Q_j of each P_i, streamed)."""

from gaussdiv.matrices.matrix import pairwise
from gaussdiv.matrices.topk import pairwise_topk

__all__ = ["pairwise", "pairwise_topk"]
