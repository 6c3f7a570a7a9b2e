"""The games-room wall the camera sees: the background of every shot."""

import numpy as np

from .canvas import Canvas


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
    canvas = Canvas(shape, tone=180)
    _draw_wall_and_floor(canvas, width / height)
    _draw_window(canvas)
    _draw_clock(canvas)
    _draw_plant(canvas)
    _draw_shelves(canvas)
    return canvas.image()
