"""Small inline SVG charts for the class pages: readable offline, no JavaScript, crisp at any zoom."""

from __future__ import annotations

import html
import math

COLORS = {"passed": "#2da44e", "partial": "#d4a72c", "failed": "#cf222e", "not attempted": "#afb8c1",
          "error": "#6e7781"}


def _e(text) -> str:
    return html.escape(str(text), quote=True)


def bins_for(maximum: float) -> list[tuple[float, float]]:
    """Bin edges over [0, maximum]: one per point up to 20 points, else 20 equal bins."""
    if maximum <= 0:
        return [(0.0, 0.0)]
    if maximum <= 20 and float(maximum).is_integer():
        return [(v - 0.5, v + 0.5) for v in range(int(maximum) + 1)]
    width = maximum / 20
    return [(i * width, (i + 1) * width) for i in range(20)]


def histogram(values: list[float], maximum: float, *, width: int = 260, height: int = 70,
              label: str = "score") -> str:
    """Counts of ``values`` in bins over [0, maximum], as an inline SVG bar chart."""
    edges = bins_for(maximum)
    counts = [0] * len(edges)
    for v in values:
        for i, (lo, hi) in enumerate(edges):
            if lo <= v < hi or (i == len(edges) - 1 and v >= lo):
                counts[i] += 1
                break
    top = max(counts) or 1
    pad_bottom, pad_top = 14, 10
    bar_w = width / len(edges)
    parts = [f'<svg class="hist" role="img" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
             f'xmlns="http://www.w3.org/2000/svg"><title>{_e(label)} distribution</title>']
    for i, ((lo, hi), count) in enumerate(zip(edges, counts)):
        h = (height - pad_bottom - pad_top) * count / top
        x = i * bar_w
        y = height - pad_bottom - h
        span = f"{max(lo, 0):g}" if hi - lo == 1 else f"{max(lo, 0):.3g}-{hi:.3g}"
        parts.append(f'<rect x="{x + 1:.1f}" y="{y:.1f}" width="{max(bar_w - 2, 1):.1f}" height="{h:.1f}" '
                     f'fill="#0969da"><title>{_e(label)} {span}: {count}</title></rect>')
        if count and bar_w >= 9:
            parts.append(f'<text x="{x + bar_w / 2:.1f}" y="{y - 2:.1f}" font-size="8" text-anchor="middle" '
                         f'fill="#57606a">{count}</text>')
    parts.append(f'<line x1="0" y1="{height - pad_bottom}" x2="{width}" y2="{height - pad_bottom}" stroke="#8c959f"/>')
    parts.append(f'<text x="1" y="{height - 2}" font-size="9" fill="#57606a">0</text>')
    parts.append(f'<text x="{width - 1}" y="{height - 2}" font-size="9" fill="#57606a" '
                 f'text-anchor="end">{maximum:g}</text>')
    parts.append("</svg>")
    return "".join(parts)


def stacked_bar(parts: list[tuple[str, int]], *, width: int = 260, height: int = 16) -> str:
    """One horizontal bar split in proportion to the counts of ``parts`` [(state, count), ...]."""
    total = sum(c for _, c in parts) or 1
    out = [f'<svg class="bar" role="img" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
           f'xmlns="http://www.w3.org/2000/svg"><title>'
           + _e(", ".join(f"{state}: {count}" for state, count in parts)) + "</title>"]
    x = 0.0
    for state, count in parts:
        if not count:
            continue
        w = width * count / total
        out.append(f'<rect x="{x:.2f}" y="0" width="{w:.2f}" height="{height}" fill="{COLORS.get(state, "#999")}">'
                   f'<title>{_e(state)}: {count}</title></rect>')
        if w >= 18:
            out.append(f'<text x="{x + w / 2:.1f}" y="{height - 4}" font-size="10" text-anchor="middle" '
                       f'fill="#fff">{count}</text>')
        x += w
    out.append("</svg>")
    return "".join(out)


def share_bar(share: float, *, width: int = 80, height: int = 10) -> str:
    """A small bar for a proportion in [0, 1]."""
    share = min(max(share if not math.isnan(share) else 0.0, 0.0), 1.0)
    return (f'<svg class="share" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
            f'xmlns="http://www.w3.org/2000/svg"><rect width="{width}" height="{height}" fill="#eaeef2"/>'
            f'<rect width="{width * share:.1f}" height="{height}" fill="#2da44e"/></svg>')
