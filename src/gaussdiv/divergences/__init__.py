"""Divergences between Gaussians, one module each, written once over the pair relations."""
