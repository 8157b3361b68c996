"""``python -m gaussdiv``: run the built-in demo."""

from gaussdiv.demo import run

if __name__ == "__main__":
    run()
