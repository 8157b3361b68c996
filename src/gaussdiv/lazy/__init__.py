"""Gaussians of Dask arrays and the library's functions over them, chunk by chunk."""
