"""Pictures for the feedback report: the prankster's face recovered by the student's hard-EM steps
next to the reference's (the prankster assignment's picture, with ``hard_EM=True``)."""

from __future__ import annotations

from ..prankster.figures import figures as prankster_figures


def figures(call, reference):
    return prankster_figures(call, reference, hard_EM=True)
