"""The drawing surface of every picture: supersampled, in resolution-free coordinates.

Shapes are boolean masks built from ``x`` and ``y`` with the four basic operations and
comparisons only, and grey levels are whole numbers, so a drawing is the same bytes on every
machine (IEEE 754 rounds those operations identically).
"""

import numpy as np

_SUPERSAMPLING = 4  # sub-pixels per pixel side when drawing: smooth edges at any size


class Canvas:
    """A supersampled drawing surface in resolution-free coordinates.

    ``y`` runs from 0 (top) to 1 (bottom) over the height; ``x`` is in the same unit (so circles
    stay round) and starts at ``x0``. Shapes are boolean masks built from ``x`` and ``y`` with
    the four basic operations and comparisons only.
    """

    def __init__(self, shape, x0=0.0, tone=0.0):
        height, width = shape
        rows = height * _SUPERSAMPLING
        cols = width * _SUPERSAMPLING
        self.shape = (height, width)
        self.y = ((np.arange(rows) + 0.5) / rows)[:, None]
        self.x = ((np.arange(cols) + 0.5) / rows)[None, :] + x0
        self.pixels = np.full((rows, cols), float(tone))

    def paint(self, mask, tone):
        """Set the sub-pixels where ``mask`` is true to ``tone``."""
        self.pixels[np.broadcast_to(mask, self.pixels.shape)] = tone

    def ellipse(self, cx, cy, rx, ry):
        """Points inside the axis-aligned ellipse of centre (cx, cy) and radii (rx, ry)."""
        return ((self.x - cx) / rx) ** 2 + ((self.y - cy) / ry) ** 2 <= 1.0

    def rounded_box(self, cx, cy, rx, ry):
        """A 'squircle' (|u|^4 + |v|^4 <= 1): a box with rounded corners."""
        return ((self.x - cx) / rx) ** 4 + ((self.y - cy) / ry) ** 4 <= 1.0

    def box(self, x0, x1, y0, y1):
        """Points of the rectangle [x0, x1] x [y0, y1]."""
        return (self.x >= x0) & (self.x <= x1) & (self.y >= y0) & (self.y <= y1)

    def segment(self, p, r, thickness):
        """Points closer than ``thickness / 2`` to the segment from ``p`` to ``r``."""
        (px, py), (rx, ry) = p, r
        dx, dy = rx - px, ry - py
        t = np.clip(((self.x - px) * dx + (self.y - py) * dy) / (dx * dx + dy * dy), 0.0, 1.0)
        ex = self.x - (px + t * dx)
        ey = self.y - (py + t * dy)
        return ex * ex + ey * ey <= (thickness / 2) ** 2

    def below(self, p, r):
        """Points on the lower side of the line through ``p`` and ``r`` (``p`` left of ``r``)."""
        (px, py), (rx, ry) = p, r
        return (rx - px) * (self.y - py) - (ry - py) * (self.x - px) >= 0.0

    def image(self):
        """The drawing averaged down to its pixel grid and rounded to grey levels, (h, w)."""
        height, width = self.shape
        blocks = self.pixels.reshape(height, _SUPERSAMPLING, width, _SUPERSAMPLING)
        return np.clip(np.round(blocks.mean(axis=(1, 3))), 0.0, 255.0)
