"""The lineup: eight fictional suspects and their portraits, drawn procedurally with numpy."""

from functools import lru_cache
from typing import NamedTuple

import numpy as np

from .canvas import Canvas


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
    canvas = Canvas(shape, x0=-width / height / 2, tone=suspect.backdrop)
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
def lineup_stack(shape):
    """The portraits of :data:`SUSPECTS` at ``shape`` (h, w), shape (n_suspects, h, w), read-only."""
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
    faces = lineup_stack(tuple(shape))
    return {name: face.copy() for name, face in zip(SUSPECT_NAMES, faces)}
