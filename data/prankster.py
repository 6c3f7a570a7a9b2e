"""Data for the ``prankster`` assignment: who hid the games for game night?

A security camera pointed at a wall of the games room took ``K`` shots while the prankster walked
past it. Every shot shows the same background ``B`` (H, W) with the prankster's face ``F`` (H, w)
pasted at an unknown column offset ``d_k``, drawn from a prior ``a`` over the ``W - w + 1``
possible offsets, plus heavy Gaussian pixel noise with standard deviation ``noise_sd``; the
result is rounded to integers and clipped to ``[0, 255]`` like a real 8-bit camera::

    clean_k    = B with F pasted over its columns d_k .. d_k + w - 1
    X[:, :, k] = clip(round(clean_k + noise_sd * N(0, I)), 0, 255)

The noise is so strong that no single shot shows a face, yet EM on all the shots does.

The face is one of the :data:`SUSPECTS` of a lineup. Every portrait and the background are drawn
procedurally with numpy (no photograph of anybody is involved) and every suspect is fictional.
The culprit is picked from the seed by a hash, so who it is appears in plain text nowhere: not in
the data, not in this file, not in anything the notebook prints. :func:`identify` names the
suspect that a recovered face looks like and :func:`is_culprit` checks an accusation.

Reproducibility: everything random comes from ``numpy.random.default_rng(seed)`` (PCG64) through
the ``random`` and ``standard_normal`` methods, whose streams numpy keeps stable; the drawings
use only the four basic operations and comparisons on whole-number grey levels, which IEEE 754
rounds identically on every machine. So a seed gives the same bytes everywhere. Generated data
sets are cached on disk (``$COURSE_DATA_CACHE`` or ``~/.cache/em-vi-course/``) as compressed
``uint8``; a missing or corrupt cache file is simply regenerated.
"""

import hashlib
import os
import tempfile
from functools import lru_cache
from pathlib import Path
from typing import NamedTuple

import numpy as np

VERSION = 1
"""Version of the generator; part of the cache key, bump it whenever the output changes."""

DEFAULT_SEED = 1806
"""Seed of the data sets used in the assignment (:func:`load`)."""

NOISE_SD = 200.0
"""Standard deviation of the camera noise, in grey levels (pixel values span 0..255)."""

FULL_SIZE = {"height": 100, "width": 200, "face_width": 73, "n_images": 1000}
"""Sizes of the assignment's data set: images (100, 200), face width 73, 1000 images."""

SMALL_SIZE = {"height": 30, "width": 60, "face_width": 22, "n_images": 200}
"""Sizes of the small variant for tests: the images and the face scaled by 0.3, 200 images.

Same noise as the full set; EM on it takes a few hundredths of a second and still finds the
face (with 120 images it sometimes stops at a blurry one)."""

_SUPERSAMPLING = 4  # sub-pixels per pixel side when drawing: smooth edges at any size
_CULPRIT_SALT = b"em-vi-course/prankster/culprit"
_ACCUSATION_SALT = b"em-vi-course/prankster/accusation"


# ---------------------------------------------------------------------------------------------
# The lineup
# ---------------------------------------------------------------------------------------------

class Suspect(NamedTuple):
    """Features of one (fictional) suspect; every tone is a whole grey level in 0..255."""

    name: str
    head: str  # "oval", "round", "square" or "long"
    skin: int
    hair: str  # "short", "long", "bald", "spiky", "curly" or "bun"
    hair_tone: int
    eyes: str  # "dots", "wide" or "sleepy"
    brows: str  # "thin", "bushy" or "raised"
    glasses: str  # "none", "round", "square" or "shades"
    beard: str  # "none", "full", "goatee" or "moustache"
    mouth: str  # "smile", "flat", "open" or "frown"
    ears: str  # "small" or "big"
    hat: str  # "none", "top", "beanie" or "cap"
    clothes: int
    backdrop: int


SUSPECTS = (
    Suspect("Ada Quillfeather", head="oval", skin=205, hair="long", hair_tone=40, eyes="wide",
            brows="thin", glasses="round", beard="none", mouth="smile", ears="small",
            hat="none", clothes=70, backdrop=150),
    Suspect("Bruno Latchkey", head="square", skin=170, hair="bald", hair_tone=50, eyes="dots",
            brows="bushy", glasses="none", beard="full", mouth="flat", ears="big",
            hat="none", clothes=215, backdrop=120),
    Suspect("Cleo Marbleton", head="round", skin=215, hair="curly", hair_tone=225, eyes="wide",
            brows="raised", glasses="none", beard="none", mouth="open", ears="small",
            hat="none", clothes=35, backdrop=95),
    Suspect("Dmitri Pawnsworth", head="long", skin=190, hair="short", hair_tone=30,
            eyes="sleepy", brows="thin", glasses="none", beard="moustache", mouth="frown",
            ears="small", hat="top", clothes=25, backdrop=185),
    Suspect("Edna Dicewright", head="oval", skin=180, hair="bun", hair_tone=160, eyes="dots",
            brows="thin", glasses="shades", beard="none", mouth="flat", ears="small",
            hat="none", clothes=120, backdrop=230),
    Suspect("Felix Tokenby", head="round", skin=200, hair="short", hair_tone=95, eyes="dots",
            brows="raised", glasses="square", beard="goatee", mouth="smile", ears="big",
            hat="beanie", clothes=160, backdrop=75),
    Suspect("Greta Meeplestone", head="square", skin=225, hair="spiky", hair_tone=20,
            eyes="wide", brows="bushy", glasses="none", beard="none", mouth="smile",
            ears="small", hat="none", clothes=240, backdrop=160),
    Suspect("Hugo Cardshuffle", head="long", skin=165, hair="short", hair_tone=230,
            eyes="sleepy", brows="bushy", glasses="round", beard="full", mouth="open",
            ears="big", hat="cap", clothes=90, backdrop=110),
)
"""The lineup: eight fictional suspects with clearly different features."""

SUSPECT_NAMES = tuple(suspect.name for suspect in SUSPECTS)
"""Names of the suspects, in lineup order."""


class _Canvas:
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


_HEAD_RADII = {"oval": (0.21, 0.27), "round": (0.24, 0.245), "square": (0.225, 0.26),
               "long": (0.175, 0.29)}
_HEAD_CENTRE_Y = 0.5
_EYE_X, _EYE_Y = 0.085, 0.47
_MOUTH_Y = 0.655


def _head_mask(canvas, suspect):
    rx, ry = _HEAD_RADII[suspect.head]
    if suspect.head == "square":
        return canvas.rounded_box(0.0, _HEAD_CENTRE_Y, rx, ry)
    return canvas.ellipse(0.0, _HEAD_CENTRE_Y, rx, ry)


def _draw_body(canvas, suspect):
    """Shoulders and neck, below the head."""
    canvas.paint(canvas.ellipse(0.0, 1.08, 0.37, 0.26), suspect.clothes)
    canvas.paint(canvas.box(-0.07, 0.07, 0.6, 0.84), suspect.skin - 25)
    collar = canvas.below((-0.12, 0.8), (0.0, 0.9)) & canvas.below((0.0, 0.9), (0.12, 0.8))
    canvas.paint(canvas.ellipse(0.0, 1.08, 0.37, 0.26) & ~collar, suspect.clothes)


def _draw_hair_behind(canvas, suspect):
    """Hair that falls behind the head and shoulders (long hair, curls)."""
    rx, ry = _HEAD_RADII[suspect.head]
    if suspect.hair == "long":
        mask = canvas.ellipse(0.0, 0.5, rx + 0.07, 0.36) & (canvas.y <= 0.85)
        canvas.paint(mask, suspect.hair_tone)
    elif suspect.hair == "curly":
        for cx, cy in ((-0.2, 0.3), (0.2, 0.3), (-0.26, 0.45), (0.26, 0.45), (-0.24, 0.6),
                       (0.24, 0.6), (-0.1, 0.2), (0.1, 0.2), (0.0, 0.19)):
            canvas.paint(canvas.ellipse(cx, cy, 0.09, 0.09), suspect.hair_tone)


def _draw_ears(canvas, suspect):
    rx, _ = _HEAD_RADII[suspect.head]
    ear_rx, ear_ry = (0.05, 0.085) if suspect.ears == "big" else (0.03, 0.055)
    for side in (-1, 1):
        canvas.paint(canvas.ellipse(side * rx, 0.5, ear_rx, ear_ry), suspect.skin - 15)
        canvas.paint(canvas.ellipse(side * (rx + ear_rx * 0.25), 0.5, ear_rx * 0.4, ear_ry * 0.5),
                     suspect.skin - 55)


def _draw_hair_on_top(canvas, suspect, head):
    rx, ry = _HEAD_RADII[suspect.head]
    top = _HEAD_CENTRE_Y - ry
    tone = suspect.hair_tone
    if suspect.hair in ("short", "long", "bun", "curly"):
        cap = canvas.ellipse(0.0, _HEAD_CENTRE_Y, rx + 0.02, ry + 0.025) & (canvas.y <= top + 0.11)
        canvas.paint(cap, tone)
    if suspect.hair == "long":
        fringe = head & canvas.ellipse(0.0, top + 0.02, rx + 0.02, 0.12) & (canvas.y <= top + 0.14)
        canvas.paint(fringe, tone)
    elif suspect.hair == "bun":
        canvas.paint(canvas.ellipse(0.0, top - 0.05, 0.075, 0.065), tone)
    elif suspect.hair == "spiky":
        for tip_x in (-0.16, -0.08, 0.0, 0.08, 0.16):
            left, right = (tip_x - 0.06, top + 0.09), (tip_x + 0.06, top + 0.09)
            spike = (canvas.below(left, (tip_x, top - 0.09))
                     & canvas.below((tip_x, top - 0.09), right) & (canvas.y <= top + 0.09))
            canvas.paint(spike, tone)
        canvas.paint(head & (canvas.y <= top + 0.08), tone)


def _draw_eyes(canvas, suspect):
    brow_y = _EYE_Y - 0.055
    for side in (-1, 1):
        cx = side * _EYE_X
        if suspect.eyes == "wide":
            canvas.paint(canvas.ellipse(cx, _EYE_Y, 0.042, 0.03), 250)
            canvas.paint(canvas.ellipse(cx, _EYE_Y, 0.018, 0.02), 15)
        elif suspect.eyes == "sleepy":
            canvas.paint(canvas.ellipse(cx, _EYE_Y, 0.04, 0.022) & (canvas.y >= _EYE_Y), 245)
            canvas.paint(canvas.ellipse(cx, _EYE_Y + 0.006, 0.016, 0.014) & (canvas.y >= _EYE_Y),
                         20)
            canvas.paint(canvas.segment((cx - 0.042, _EYE_Y), (cx + 0.042, _EYE_Y), 0.012), 30)
        else:
            canvas.paint(canvas.ellipse(cx, _EYE_Y, 0.02, 0.02), 15)
        if suspect.brows == "bushy":
            canvas.paint(canvas.box(cx - 0.05, cx + 0.05, brow_y - 0.016, brow_y + 0.012), 25)
        elif suspect.brows == "raised":
            inner, outer = (cx - side * 0.04, brow_y - 0.005), (cx + side * 0.04, brow_y - 0.035)
            canvas.paint(canvas.segment(inner, outer, 0.014), 35)
        else:
            canvas.paint(canvas.segment((cx - 0.04, brow_y), (cx + 0.04, brow_y), 0.01), 45)


def _draw_glasses(canvas, suspect):
    if suspect.glasses == "none":
        return
    frame = 20
    for side in (-1, 1):
        cx = side * _EYE_X
        if suspect.glasses == "round":
            ring = (canvas.ellipse(cx, _EYE_Y, 0.06, 0.06)
                    & ~canvas.ellipse(cx, _EYE_Y, 0.048, 0.048))
            canvas.paint(ring, frame)
        elif suspect.glasses == "square":
            outer = canvas.box(cx - 0.065, cx + 0.065, _EYE_Y - 0.045, _EYE_Y + 0.045)
            inner = canvas.box(cx - 0.052, cx + 0.052, _EYE_Y - 0.032, _EYE_Y + 0.032)
            canvas.paint(outer & ~inner, frame)
        else:  # dark sunglasses
            canvas.paint(canvas.rounded_box(cx, _EYE_Y + 0.005, 0.07, 0.045), 10)
    canvas.paint(canvas.segment((-0.03, _EYE_Y - 0.01), (0.03, _EYE_Y - 0.01), 0.012), frame)


def _draw_nose(canvas, suspect):
    canvas.paint(canvas.segment((0.0, 0.5), (0.018, 0.585), 0.014), suspect.skin - 45)
    canvas.paint(canvas.ellipse(0.0, 0.59, 0.03, 0.012), suspect.skin - 40)


def _draw_mouth(canvas, suspect):
    lips = 60
    if suspect.mouth == "smile":
        centre = _MOUTH_Y - 0.03
        arc = (canvas.ellipse(0.0, centre, 0.085, 0.05)
               & ~canvas.ellipse(0.0, centre - 0.008, 0.075, 0.042) & (canvas.y >= centre))
        canvas.paint(arc, lips)
    elif suspect.mouth == "frown":
        centre = _MOUTH_Y + 0.03
        arc = (canvas.ellipse(0.0, centre, 0.075, 0.04)
               & ~canvas.ellipse(0.0, centre + 0.008, 0.065, 0.032) & (canvas.y <= centre))
        canvas.paint(arc, lips)
    elif suspect.mouth == "open":
        canvas.paint(canvas.ellipse(0.0, _MOUTH_Y, 0.06, 0.038), 25)
        teeth_top = _MOUTH_Y - 0.03
        canvas.paint(canvas.ellipse(0.0, teeth_top, 0.045, 0.018) & (canvas.y >= teeth_top), 240)
    else:
        canvas.paint(canvas.box(-0.06, 0.06, _MOUTH_Y - 0.007, _MOUTH_Y + 0.007), lips)


def _draw_beard(canvas, suspect, head):
    tone = suspect.hair_tone
    if suspect.beard == "full":
        chin = head & (canvas.y >= 0.56) & ~canvas.ellipse(0.0, _MOUTH_Y, 0.07, 0.03)
        canvas.paint(chin, tone)
        chin_tuft = canvas.ellipse(0.0, _HEAD_CENTRE_Y + 0.2, 0.13, 0.13) & (canvas.y >= 0.6)
        canvas.paint(chin_tuft, tone)
        canvas.paint(canvas.ellipse(0.0, _MOUTH_Y, 0.05, 0.014), 70)
    elif suspect.beard == "goatee":
        canvas.paint(canvas.ellipse(0.0, _MOUTH_Y + 0.085, 0.045, 0.05), tone)
    elif suspect.beard == "moustache":
        for side in (-1, 1):
            canvas.paint(canvas.ellipse(side * 0.04, _MOUTH_Y - 0.035, 0.05, 0.018), tone)


def _draw_hat(canvas, suspect):
    rx, ry = _HEAD_RADII[suspect.head]
    top = _HEAD_CENTRE_Y - ry
    if suspect.hat == "top":
        canvas.paint(canvas.box(-0.15, 0.15, 0.0, top + 0.06), 15)
        canvas.paint(canvas.box(-0.15, 0.15, top - 0.01, top + 0.035), 140)  # hat band
        canvas.paint(canvas.box(-0.27, 0.27, top + 0.04, top + 0.075), 15)
    elif suspect.hat == "beanie":
        canvas.paint(canvas.ellipse(0.0, top + 0.1, rx + 0.03, 0.16) & (canvas.y <= top + 0.1), 235)
        canvas.paint(canvas.box(-rx - 0.03, rx + 0.03, top + 0.06, top + 0.12), 200)
        canvas.paint(canvas.ellipse(0.0, top - 0.07, 0.05, 0.05), 235)
    elif suspect.hat == "cap":
        crown = canvas.ellipse(0.0, top + 0.09, rx + 0.02, 0.13) & (canvas.y <= top + 0.09)
        visor = canvas.ellipse(rx * 0.7, top + 0.09, 0.2, 0.035) & (canvas.y >= top + 0.08)
        canvas.paint(crown, 45)
        canvas.paint(visor, 30)


def draw_portrait(suspect, shape=(100, 73)):
    """Draw the portrait of a suspect.

    Parameters
    ----------
    suspect : Suspect
        The suspect's features.
    shape : tuple of int, default (100, 73)
        ``(h, w)``: height and width of the portrait in pixels.

    Returns
    -------
    face : ndarray, shape (h, w)
        Grey levels, whole numbers in ``[0, 255]`` (float64).
    """
    height, width = shape
    canvas = _Canvas(shape, x0=-width / height / 2, tone=suspect.backdrop)
    _draw_hair_behind(canvas, suspect)
    _draw_body(canvas, suspect)
    _draw_ears(canvas, suspect)
    head = _head_mask(canvas, suspect)
    canvas.paint(head, suspect.skin)
    _draw_eyes(canvas, suspect)
    _draw_nose(canvas, suspect)
    _draw_mouth(canvas, suspect)
    _draw_beard(canvas, suspect, head)
    _draw_hair_on_top(canvas, suspect, head)
    _draw_glasses(canvas, suspect)
    _draw_hat(canvas, suspect)
    return canvas.image()


@lru_cache(maxsize=8)
def _lineup_stack(shape):
    faces = np.stack([draw_portrait(suspect, shape) for suspect in SUSPECTS])
    faces.setflags(write=False)
    return faces


def lineup(shape=(100, 73)):
    """The portraits of all suspects.

    Parameters
    ----------
    shape : tuple of int, default (100, 73)
        ``(h, w)``: size of each portrait.

    Returns
    -------
    dict
        ``{name: face}`` in lineup order, each ``face`` an ndarray of shape (h, w), float64.
    """
    faces = _lineup_stack(tuple(shape))
    return {name: face.copy() for name, face in zip(SUSPECT_NAMES, faces)}


# ---------------------------------------------------------------------------------------------
# The scene
# ---------------------------------------------------------------------------------------------

_BOOK_TONES = (60, 200, 110, 30, 160, 85, 230, 135, 45, 190, 100, 215, 70, 150)


def _draw_wall_and_floor(canvas, width_units):
    stripes = (np.floor(canvas.x / 0.1) % 2 == 0) & (canvas.y < 0.86)
    canvas.paint(stripes, 165)
    canvas.paint(canvas.box(0.0, width_units, 0.84, 0.87), 225)  # skirting board
    canvas.paint(canvas.y > 0.87, 95)
    for x in np.arange(0.15, width_units, 0.3):  # floor boards
        canvas.paint(canvas.box(x, x + 0.012, 0.87, 1.0), 60)


def _draw_window(canvas):
    canvas.paint(canvas.box(0.1, 0.55, 0.1, 0.52), 55)
    for x0, x1 in ((0.13, 0.31), (0.34, 0.52)):
        for y0, y1 in ((0.13, 0.3), (0.33, 0.49)):
            canvas.paint(canvas.box(x0, x1, y0, y1), 240)
    canvas.paint(canvas.ellipse(0.4, 0.22, 0.07, 0.035), 215)  # a cloud outside
    canvas.paint(canvas.box(0.07, 0.58, 0.52, 0.56), 210)  # sill


def _draw_clock(canvas):
    canvas.paint(canvas.ellipse(0.8, 0.22, 0.085, 0.085), 35)
    canvas.paint(canvas.ellipse(0.8, 0.22, 0.07, 0.07), 245)
    canvas.paint(canvas.segment((0.8, 0.22), (0.8, 0.165), 0.012), 20)
    canvas.paint(canvas.segment((0.8, 0.22), (0.84, 0.24), 0.014), 20)


def _draw_plant(canvas):
    for cx, cy, rx, ry in ((0.78, 0.58, 0.05, 0.1), (0.86, 0.55, 0.05, 0.12),
                           (0.72, 0.64, 0.06, 0.05), (0.92, 0.63, 0.06, 0.05)):
        canvas.paint(canvas.ellipse(cx, cy, rx, ry), 50)
    canvas.paint(canvas.below((0.72, 0.7), (0.92, 0.7)) & canvas.below((0.92, 0.7), (0.9, 0.86))
                 & canvas.below((0.74, 0.86), (0.72, 0.7)) & (canvas.y <= 0.86), 140)


def _draw_shelves(canvas):
    left, right = 1.15, 1.9
    canvas.paint(canvas.box(left, right, 0.08, 0.86), 70)
    canvas.paint(canvas.box(left + 0.03, right - 0.03, 0.11, 0.84), 120)
    book_index = 0
    # (top, bottom, is the games' shelf): the prankster emptied the middle of that one.
    for shelf_top, shelf_bottom, games in ((0.11, 0.33, False), (0.36, 0.58, True),
                                           (0.61, 0.84, False)):
        canvas.paint(canvas.box(left, right, shelf_bottom, shelf_bottom + 0.03), 70)
        x = left + 0.04
        while x < right - 0.1:
            book_width = 0.035 + 0.012 * (book_index % 3)
            if not (games and 1.4 < x < 1.75):
                book_top = shelf_top + 0.03 + 0.025 * (book_index % 4)
                tone = _BOOK_TONES[book_index % len(_BOOK_TONES)]
                canvas.paint(canvas.box(x, x + book_width, book_top, shelf_bottom), tone)
            x += book_width + 0.006
            book_index += 1


def draw_background(shape=(100, 200)):
    """Draw the games room wall that the camera sees.

    Parameters
    ----------
    shape : tuple of int, default (100, 200)
        ``(H, W)``: size of the background in pixels.

    Returns
    -------
    background : ndarray, shape (H, W)
        Grey levels, whole numbers in ``[0, 255]`` (float64).
    """
    height, width = shape
    canvas = _Canvas(shape, tone=180)
    _draw_wall_and_floor(canvas, width / height)
    _draw_window(canvas)
    _draw_clock(canvas)
    _draw_plant(canvas)
    _draw_shelves(canvas)
    return canvas.image()


# ---------------------------------------------------------------------------------------------
# The camera shots
# ---------------------------------------------------------------------------------------------

def _culprit_index(seed):
    """Index in :data:`SUSPECTS` of the culprit for ``seed``: a hash, not the name, decides."""
    digest = hashlib.sha256(_CULPRIT_SALT + str(int(seed)).encode()).digest()
    return int.from_bytes(digest[:8], "little") % len(SUSPECTS)


def _position_prior(n_positions, rng):
    """A non-uniform prior over face positions: two bumps of seeded place and size on a floor.

    The prankster lingers at two places of the wall (where the games were hidden...) and passes
    quickly elsewhere. Each bump is the smooth polynomial ``(1 - t^2)^2`` so no transcendental
    function (whose last bit may differ between machines) is involved.

    Parameters
    ----------
    n_positions : int
        Number of possible face positions, ``W - w + 1``.
    rng : numpy.random.Generator
        Source of the bumps' centres and widths (3 numbers each are drawn).

    Returns
    -------
    prior : ndarray, shape (n_positions,)
        Positive probabilities that sum to 1.
    """
    positions = np.arange(n_positions) / max(n_positions - 1, 1)  # in [0, 1]
    prior = np.full(n_positions, 0.15)
    for weight, start in ((1.0, 0.1), (0.6, 0.55)):  # one bump in each half of the wall
        centre, half_width, height = rng.random(3)
        t = (positions - (start + 0.35 * centre)) / (0.08 + 0.12 * half_width)
        prior += weight * (0.5 + height) * np.clip(1.0 - t * t, 0.0, None) ** 2
    return prior / prior.sum()


def _draw_offsets(prior, n_images, rng):
    """Face positions ``d_k`` drawn from ``prior`` by inverting its CDF, shape (K,)."""
    cdf = np.cumsum(prior)
    offsets = np.searchsorted(cdf, rng.random(n_images) * cdf[-1], side="right")
    return np.minimum(offsets, len(prior) - 1)


def compose_images(face, background, offsets):
    """Noise-free shots: the background with the face pasted at each offset.

    Parameters
    ----------
    face : ndarray, shape (H, w)
    background : ndarray, shape (H, W)
    offsets : ndarray of int, shape (K,)
        Column of the image where the face's first column lands, in ``0 .. W - w``.

    Returns
    -------
    images : ndarray, shape (H, W, K)
    """
    face_width = face.shape[1]
    width = background.shape[1]
    # Face column seen at image column j in image k (outside 0..w-1: background there).
    face_column = np.arange(width)[:, None] - np.asarray(offsets)[None, :]  # (W, K)
    in_face = (face_column >= 0) & (face_column < face_width)
    pasted = face[:, np.clip(face_column, 0, face_width - 1)]  # (H, W, K)
    return np.where(in_face, pasted, background[:, :, None])


def _truth(seed, height, width, face_width, n_images, noise_sd):
    """Everything but the noise, and the generator positioned to draw the noise."""
    rng = np.random.default_rng(seed)
    face = draw_portrait(SUSPECTS[_culprit_index(seed)], (height, face_width))
    background = draw_background((height, width))
    prior = _position_prior(width - face_width + 1, rng)
    offsets = _draw_offsets(prior, n_images, rng)
    truth = {"face": face, "background": background, "offsets": offsets, "prior": prior,
             "noise_sd": float(noise_sd)}
    return truth, rng


def _check_sizes(height, width, face_width, n_images, noise_sd):
    if not 1 <= face_width <= width or height < 1 or n_images < 1:
        raise ValueError(f"need 1 <= face_width <= width, height >= 1 and n_images >= 1; got "
                         f"height={height}, width={width}, face_width={face_width}, "
                         f"n_images={n_images}")
    if not noise_sd >= 0:
        raise ValueError(f"noise_sd must be >= 0, got {noise_sd}")


def _generate_uint8(seed, height, width, face_width, n_images, noise_sd):
    truth, rng = _truth(seed, height, width, face_width, n_images, noise_sd)
    clean = compose_images(truth["face"], truth["background"], truth["offsets"])
    # The noise is drawn as one block in C order; in-place updates keep the peak memory at two
    # (H, W, K) arrays.
    shots = rng.standard_normal(clean.shape)
    shots *= noise_sd
    shots += clean
    np.round(shots, out=shots)
    np.clip(shots, 0, 255, out=shots)
    return shots.astype(np.uint8), truth


def generate(K=1000, seed=DEFAULT_SEED, *, height=100, width=200, face_width=73,
             noise_sd=NOISE_SD):
    """Draw the camera shots (no cache; see :func:`load` for the cached data sets).

    Parameters
    ----------
    K : int, default 1000
        Number of shots.
    seed : int, default DEFAULT_SEED
        Seed of ``numpy.random.default_rng``; it also decides who the culprit is.
    height, width : int, default 100, 200
        ``H`` and ``W``: size of a shot.
    face_width : int, default 73
        ``w``: width of the face, at most ``W``; the face has the shot's height.
    noise_sd : float, default NOISE_SD
        Standard deviation of the Gaussian noise, in grey levels.

    Returns
    -------
    X : ndarray, shape (H, W, K)
        The shots, whole numbers in ``[0, 255]`` stored as float64 (so that students can
        subtract them safely).
    truth : dict
        Ground truth, for tests and grading only:
        ``face`` (H, w), ``background`` (H, W), ``offsets`` (K,) int (column of the face's
        first column in each shot), ``prior`` (W - w + 1,) (the distribution of the offsets),
        ``noise_sd`` float.
    """
    _check_sizes(height, width, face_width, K, noise_sd)
    images, truth = _generate_uint8(seed, height, width, face_width, K, noise_sd)
    return images.astype(np.float64), truth


# ---------------------------------------------------------------------------------------------
# Cached data sets of the assignment
# ---------------------------------------------------------------------------------------------

def cache_dir():
    """Folder of the cached data sets: ``$COURSE_DATA_CACHE`` or ``~/.cache/em-vi-course``."""
    configured = os.environ.get("COURSE_DATA_CACHE")
    return Path(configured) if configured else Path.home() / ".cache" / "em-vi-course"


def _sizes(small):
    return dict(SMALL_SIZE if small else FULL_SIZE)


def _cache_path(seed, height, width, face_width, n_images, noise_sd):
    key = (f"prankster-v{VERSION}-seed{int(seed)}-{height}x{width}x{n_images}-w{face_width}"
           f"-sd{float(noise_sd):g}")
    return cache_dir() / f"{key}.npz"


def _read_cache(path, shape):
    """The cached shots, or None when the file is absent, unreadable or not what is expected."""
    try:
        with np.load(path, allow_pickle=False) as archive:
            images = archive["X"]
            digest = str(archive["sha256"])
    except Exception:  # absent, truncated, not a zip, missing key...: regenerate
        return None
    if images.dtype != np.uint8 or images.shape != shape:
        return None
    if hashlib.sha256(images.tobytes()).hexdigest() != digest:
        return None
    return images


def _write_cache(path, images):
    """Write atomically (temporary file, then rename) so a concurrent reader never sees half."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
        with os.fdopen(handle, "wb") as stream:
            np.savez_compressed(stream, X=images,
                                sha256=np.array(hashlib.sha256(images.tobytes()).hexdigest()))
        os.replace(temporary, path)
    except OSError:
        pass  # a read-only home is no reason to fail: the data is just not cached


def _cached_uint8(seed, height, width, face_width, n_images, noise_sd):
    path = _cache_path(seed, height, width, face_width, n_images, noise_sd)
    images = _read_cache(path, (height, width, n_images))
    if images is None:
        images, _ = _generate_uint8(seed, height, width, face_width, n_images, noise_sd)
        _write_cache(path, images)
    return images


def load(small=False, seed=DEFAULT_SEED):
    """The camera shots of the assignment, from the on-disk cache (generated on first use).

    Parameters
    ----------
    small : bool, default False
        False: the assignment's data, ``H, W, w, K = 100, 200, 73, 1000``
        (:data:`FULL_SIZE`); True: the small variant for tests, ``30, 60, 22, 200``
        (:data:`SMALL_SIZE`), drawn the same way.
    seed : int, default DEFAULT_SEED

    Returns
    -------
    dict
        ``X`` : ndarray, shape (H, W, K)
            The shots, whole numbers in ``[0, 255]`` as float64.
        ``w`` : int
            Width of the face.
    """
    sizes = _sizes(small)
    images = _cached_uint8(seed, sizes["height"], sizes["width"], sizes["face_width"],
                           sizes["n_images"], NOISE_SD)
    return {"X": images.astype(np.float64), "w": sizes["face_width"]}


def ground_truth(small=False, seed=DEFAULT_SEED):
    """What generated :func:`load`'s data, for tests and grading only (no noise is drawn).

    Parameters
    ----------
    small : bool, default False
    seed : int, default DEFAULT_SEED

    Returns
    -------
    dict
        ``face`` (H, w), ``background`` (H, W), ``offsets`` (K,) int, ``prior`` (W - w + 1,)
        and ``noise_sd`` float; see :func:`generate`.
    """
    sizes = _sizes(small)
    truth, _ = _truth(seed, sizes["height"], sizes["width"], sizes["face_width"],
                      sizes["n_images"], NOISE_SD)
    return truth


# ---------------------------------------------------------------------------------------------
# Solving the mystery
# ---------------------------------------------------------------------------------------------

def _correlation(a, b):
    """Pearson correlation of two arrays of the same shape (0 when one of them is constant)."""
    a = np.asarray(a, dtype=float).ravel() - np.mean(a)
    b = np.asarray(b, dtype=float).ravel() - np.mean(b)
    norms = np.sqrt(np.dot(a, a) * np.dot(b, b))
    return float(np.dot(a, b) / norms) if norms > 0 else 0.0


def match_scores(F):
    """How much a face looks like each suspect.

    Parameters
    ----------
    F : array_like, shape (h, w)
        A face, e.g. the one EM recovered; the portraits are drawn at its size.

    Returns
    -------
    dict
        ``{name: correlation}`` in lineup order: Pearson correlation between ``F`` and the
        suspect's portrait, in ``[-1, 1]``.
    """
    F = np.asarray(F, dtype=float)
    if F.ndim != 2 or min(F.shape) < 1 or not np.all(np.isfinite(F)):
        raise ValueError(f"F must be a finite 2-d array, got shape {F.shape}")
    faces = _lineup_stack(F.shape)
    return {name: _correlation(F, face) for name, face in zip(SUSPECT_NAMES, faces)}


def identify(F):
    """The suspect whose portrait correlates best with the face ``F`` (h, w)."""
    scores = match_scores(F)
    return max(scores, key=scores.get)


def _normalise_name(name):
    return " ".join(str(name).lower().split())


def _accusation_digest(name, seed):
    text = f"{int(seed)}:{_normalise_name(name)}".encode()
    return hashlib.sha256(_ACCUSATION_SALT + text).hexdigest()


def is_culprit(name, seed=DEFAULT_SEED):
    """Check an accusation without revealing the answer.

    Parameters
    ----------
    name : str
        Full name of a suspect (case and extra spaces do not matter), e.g. ``identify(F)``.
    seed : int, default DEFAULT_SEED
        Seed of the data set the accusation is about.

    Returns
    -------
    bool
        True when ``name`` is the culprit of that data set. Only salted hashes of the names are
        compared, so nothing printed or stored contains the culprit's name.
    """
    culprit = SUSPECTS[_culprit_index(seed)].name
    return _accusation_digest(name, seed) == _accusation_digest(culprit, seed)
