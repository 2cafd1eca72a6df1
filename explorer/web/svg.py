"""Inline SVG line charts: no JavaScript library, no CDN (the machines are offline).

A chart is a polyline over (time, value) points scaled into a fixed viewBox;
CSS makes it as wide as its container, so the same markup serves phones and
desktops. Values are plain numbers; labels are escaped.
"""

from __future__ import annotations

from html import escape

WIDTH = 600
HEIGHT = 160
PAD = 24


def _fmt(value: float) -> str:
    for unit, size in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(value) >= size:
            return f"{value / size:.1f}{unit}"
    return f"{value:g}"


def line_chart(title: str, points: list[tuple[int, float]]) -> str:
    """An accessible SVG of ``points`` (x = ms since epoch); empty state when none."""
    label = escape(title)
    head = (
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-label="{label}" preserveAspectRatio="none"><title>{label}</title>'
    )
    if not points:
        return head + f'<text x="{PAD}" y="{HEIGHT // 2}" class="empty">no history yet</text></svg>'
    xs = [p[0] for p in points]
    ys = [p[1] for p in points]
    x0, x1 = min(xs), max(xs)
    y1 = max(ys) or 1.0
    span_x = (x1 - x0) or 1

    def sx(x: int) -> float:
        return PAD + (x - x0) / span_x * (WIDTH - 2 * PAD)

    def sy(y: float) -> float:
        return HEIGHT - PAD - y / y1 * (HEIGHT - 2 * PAD)

    path = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in points)
    last = points[-1]
    return (
        head
        + f'<line x1="{PAD}" y1="{HEIGHT - PAD}" x2="{WIDTH - PAD}" y2="{HEIGHT - PAD}" class="axis"/>'
        + f'<text x="2" y="{PAD - 6}" class="tick">{escape(_fmt(y1))}</text>'
        + f'<polyline points="{path}" class="line"/>'
        + f'<circle cx="{sx(last[0]):.1f}" cy="{sy(last[1]):.1f}" r="3" class="dot"/>'
        + "</svg>"
    )
