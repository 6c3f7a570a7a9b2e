"""Rendering results: plain text, HTML (Jupyter and feedback files), JSON and CSV gradebooks."""

from .html import render_html
from .text import render_table, render_text

__all__ = ["render_html", "render_table", "render_text"]
