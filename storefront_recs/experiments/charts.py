"""Small server-rendered SVG charts for the admin dashboard (no JavaScript, no chart library).

Every function returns ``Markup`` holding one ``<svg class="recs-chart">`` with a ``<title>``
per mark (the browser shows it on hover) and ``role="img"`` plus an ``aria-label``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from markupsafe import Markup, escape

PALETTE = ("#1a5fb4", "#e66100", "#26a269", "#a51d2d", "#613583", "#986a44", "#5e5c64", "#c64600")


@dataclass(frozen=True)
class Interval:
    label: str
    value: float
    low: float
    high: float
    highlight: bool = False  # the baseline


def _num(value: float) -> str:
    return f"{value:.1f}"


def _tick(value: float, percent: bool) -> str:
    if percent:
        return f"{100 * value:.1f}%"
    if abs(value) >= 1000:
        return f"{value / 1000:.1f}k"
    return f"{value:.3g}"


def _nice_max(value: float) -> float:
    if value <= 0:
        return 1.0
    magnitude = 10 ** len(str(int(value))) / 10 if value >= 1 else 1.0
    for step in (1, 2, 2.5, 5, 10):
        if value <= step * magnitude:
            return step * magnitude
    return value


def _open(width: int, height: int, label: str) -> str:
    return (f'<svg class="recs-chart" xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
            f'viewBox="0 0 {width} {height}" role="img" aria-label="{escape(label)}" '
            'font-family="system-ui, sans-serif" font-size="11">')


def line_chart(labels: Sequence[str], series: Mapping[str, Sequence[float]], *, label: str,
               width: int = 640, height: int = 220, percent: bool = False) -> Markup:
    """One line per series over shared x labels (e.g. days), with a y axis and a legend."""
    left, right, top, bottom = 48, 12, 12, 40
    plot_w, plot_h = width - left - right, height - top - bottom
    peak = _nice_max(max((v for values in series.values() for v in values), default=0.0))
    parts = [_open(width, height, label)]
    for i in range(5):
        y = top + plot_h - plot_h * i / 4
        parts.append(f'<line x1="{left}" x2="{width - right}" y1="{_num(y)}" y2="{_num(y)}" stroke="#ddd"/>')
        parts.append(f'<text x="{left - 6}" y="{_num(y + 4)}" text-anchor="end" fill="#555">'
                     f'{escape(_tick(peak * i / 4, percent))}</text>')
    count = max(len(labels), 1)
    step = plot_w / max(count - 1, 1)
    every = max(1, count // 8)
    for i, text in enumerate(labels):
        if i % every == 0 or i == count - 1:
            x = left + step * i
            parts.append(f'<text x="{_num(x)}" y="{height - bottom + 16}" text-anchor="middle" fill="#555">'
                         f'{escape(text)}</text>')
    for n, (name, values) in enumerate(series.items()):
        colour = PALETTE[n % len(PALETTE)]
        points = [(left + step * i, top + plot_h - plot_h * (v / peak)) for i, v in enumerate(values)]
        if len(points) == 1:
            points.append((left + plot_w, points[0][1]))
        path = " ".join(f"{_num(x)},{_num(y)}" for x, y in points)
        parts.append(f'<polyline class="recs-series" fill="none" stroke="{colour}" stroke-width="2" points="{path}"/>')
        for i, (x, y) in enumerate(points[: len(values)]):
            parts.append(f'<circle cx="{_num(x)}" cy="{_num(y)}" r="2.5" fill="{colour}">'
                         f'<title>{escape(name)} {escape(labels[i] if i < len(labels) else "")}: '
                         f'{escape(_tick(values[i], percent))}</title></circle>')
        lx = left + n * 110
        parts.append(f'<rect x="{lx}" y="{height - 14}" width="10" height="10" fill="{colour}"/>'
                     f'<text x="{lx + 14}" y="{height - 5}" fill="#222">{escape(name)}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))


def bar_chart(rows: Sequence[tuple[str, float]], *, label: str, width: int = 640, percent: bool = False,
              colour: str = PALETTE[0]) -> Markup:
    """Horizontal bars, one per (label, value) row."""
    bar, gap, left, right = 18, 6, 150, 70
    height = max(len(rows), 1) * (bar + gap) + 10
    peak = _nice_max(max((v for _, v in rows), default=0.0))
    plot_w = width - left - right
    parts = [_open(width, height, label)]
    for i, (name, value) in enumerate(rows):
        y = 5 + i * (bar + gap)
        w = plot_w * (value / peak) if peak else 0
        parts.append(f'<text x="{left - 6}" y="{y + 13}" text-anchor="end" fill="#222">{escape(name[:24])}</text>')
        parts.append(f'<rect class="recs-bar" x="{left}" y="{y}" width="{_num(max(w, 1))}" height="{bar}" '
                     f'fill="{colour}"><title>{escape(name)}: {escape(_tick(value, percent))}</title></rect>')
        parts.append(f'<text x="{_num(left + max(w, 1) + 4)}" y="{y + 13}" fill="#555">'
                     f'{escape(_tick(value, percent))}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))


def interval_chart(rows: Sequence[Interval], *, label: str, width: int = 640, percent: bool = True) -> Markup:
    """Each row's estimate as a dot with its confidence interval as whiskers; the baseline's
    interval is shaded across the chart so overlaps are easy to see."""
    row_h, left, right, top = 26, 90, 20, 8
    height = top + max(len(rows), 1) * row_h + 24
    lo = min((r.low for r in rows), default=0.0)
    hi = max((r.high for r in rows), default=1.0)
    lo = min(lo, 0.0)
    span = (hi - lo) or 1.0
    hi, lo = hi + span * 0.05, lo - (span * 0.05 if lo < 0 else 0)
    plot_w = width - left - right

    def x_of(value: float) -> float:
        return left + plot_w * (value - lo) / (hi - lo)

    parts = [_open(width, height, label)]
    for r in rows:
        if r.highlight:
            parts.append(f'<rect x="{_num(x_of(r.low))}" y="{top}" width="{_num(max(x_of(r.high) - x_of(r.low), 1))}" '
                         f'height="{len(rows) * row_h}" fill="#e8eef8"/>')
    for i in range(5):
        value = lo + (hi - lo) * i / 4
        x = x_of(value)
        parts.append(f'<line x1="{_num(x)}" x2="{_num(x)}" y1="{top}" y2="{top + len(rows) * row_h}" stroke="#eee"/>')
        parts.append(f'<text x="{_num(x)}" y="{height - 6}" text-anchor="middle" fill="#555">'
                     f'{escape(_tick(value, percent))}</text>')
    for i, r in enumerate(rows):
        y = top + i * row_h + row_h / 2
        colour = "#5e5c64" if r.highlight else PALETTE[(i + 1) % len(PALETTE)]
        parts.append(f'<text x="{left - 8}" y="{_num(y + 4)}" text-anchor="end" fill="#222">{escape(r.label[:24])}</text>')
        parts.append(f'<g class="recs-interval"><title>{escape(r.label)}: {escape(_tick(r.value, percent))} '
                     f'[{escape(_tick(r.low, percent))}, {escape(_tick(r.high, percent))}]</title>'
                     f'<line x1="{_num(x_of(r.low))}" x2="{_num(x_of(r.high))}" y1="{_num(y)}" y2="{_num(y)}" '
                     f'stroke="{colour}" stroke-width="2"/>'
                     f'<line x1="{_num(x_of(r.low))}" x2="{_num(x_of(r.low))}" y1="{_num(y - 6)}" y2="{_num(y + 6)}" stroke="{colour}" stroke-width="2"/>'
                     f'<line x1="{_num(x_of(r.high))}" x2="{_num(x_of(r.high))}" y1="{_num(y - 6)}" y2="{_num(y + 6)}" stroke="{colour}" stroke-width="2"/>'
                     f'<circle cx="{_num(x_of(r.value))}" cy="{_num(y)}" r="5" fill="{colour}"/></g>')
    parts.append("</svg>")
    return Markup("".join(parts))
