"""What every chapter figure must be (issue 22): no wider than the book's column, so the book
shows it at its own size, with no text smaller than 8 points once drawn."""
from __future__ import annotations

import io

from matplotlib.text import Text

#: widest figure [inches]: the book's column at 100 dpi (each stage's figures.WIDTH)
MAX_WIDTH = 7.0
MIN_POINTS = 8.0


def readable(fig) -> list[str]:
    """Why ``fig`` would be shrunk or hard to read in the book (empty when it is fine)."""
    fig.savefig(io.BytesIO(), format="png")  # draw: ticks and their labels exist from here
    problems = []
    width = fig.get_size_inches()[0]
    if width > MAX_WIDTH + 1e-9:
        problems.append(f"{width:g} in wide")
    for t in fig.findobj(Text):
        if t.get_visible() and t.get_text().strip() and t.get_fontsize() < MIN_POINTS:
            problems.append(f"{t.get_text()!r} at {t.get_fontsize():g} pt")
    return problems
