"""Cancellation-free scalar kernels, error-free arithmetic and backward-error corrections."""
