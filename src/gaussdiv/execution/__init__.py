"""How the exact routes run: the one refinement driver (see :mod:`.refine`)."""
