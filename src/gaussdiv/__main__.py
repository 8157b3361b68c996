"""``python -m gaussdiv``: the ``gaussdiv`` command line (``python -m gaussdiv demo``, ...)."""

from gaussdiv.cli import main

if __name__ == "__main__":
    main()
