"""Reporting results, one module per output: text (terminals), html (a result in Jupyter and in a
feedback page), gradebook (JSON contract, CSV), feedback (a student's page), index_html (the
gradebook's front page), class_report/class_html (the class), similarity/similarity_html (code
similarity), figures (pictures in feedback). ``pages`` writes them into a gradebook folder."""

from .html import render_html
from .text import render_table, render_text

__all__ = ["render_html", "render_table", "render_text"]
