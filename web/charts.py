"""The HR dashboard's charts, drawn on the server as SVG with pygal.

Each chart is served as its own image (web/hr.py), shown by an <img>: an SVG in an <img> runs no script and
fetches nothing, and the page itself keeps the Content-Security-Policy without inline styles. pygal's
tooltip script (fetched from a CDN by default) is switched off (`js=[]`), and its inline configuration
script is taken out of the drawing, so the SVG holds drawing and style only. The words come in the page's
language; the font list names CJK fonts first so that Chinese labels draw everywhere.
"""
from __future__ import annotations

import math

import pygal
from pygal.style import Style

SVG_NS = "{http://www.w3.org/2000/svg}"
FONTS = ('"Noto Sans CJK SC", "Source Han Sans SC", "WenQuanYi Micro Hei", "Microsoft YaHei", '
         '"PingFang SC", "Helvetica Neue", Arial, sans-serif')
BLUE, GREY, RED = "#0d6efd", "#adb5bd", "#dc3545"


def _style(value_colour: str) -> Style:
    """The charts' look; values are printed in `value_colour` (white inside a bar, dark above one)."""
    return Style(font_family=FONTS, background="#ffffff", plot_background="#ffffff", foreground="#212529",
                 foreground_strong="#212529", foreground_subtle="#6c757d", colors=(BLUE, GREY, RED),
                 label_font_size=13, major_label_font_size=13, value_font_size=13, legend_font_size=13,
                 title_font_size=15, value_colors=(value_colour, value_colour))


COMMON = {"js": [], "disable_xml_declaration": False, "print_values": True, "show_y_guides": True,
          "truncate_label": -1, "truncate_legend": -1, "margin": 12}


def _svg(chart) -> bytes:
    """The chart as SVG bytes, without any <script> element."""
    tree = chart.render_tree()
    for parent in list(tree.iter()):
        for child in list(parent):
            if child.tag in ("script", f"{SVG_NS}script"):
                parent.remove(child)
    from xml.etree import ElementTree
    try:
        return ElementTree.tostring(tree, encoding="utf-8", xml_declaration=True)
    except TypeError:      # pygal drew with lxml
        from lxml import etree
        return etree.tostring(tree, encoding="utf-8", xml_declaration=True)


def funnel(stages: list[tuple[str, int]], title: str, empty: str) -> bytes:
    """The promotion funnel: one bar per stage, the first stage on top, with its count."""
    longest = max((len(label) for label, _n in stages), default=0)
    chart = pygal.HorizontalBar(**COMMON, style=_style("#ffffff"), width=720, height=60 + 52 * max(len(stages), 1), show_legend=False,
                                title=title, no_data_text=empty, margin_left=12 + 6 * longest,
                                print_values_position="center")
    ordered = list(reversed(stages))          # pygal draws the first label at the bottom
    chart.x_labels = [label for label, _n in ordered]
    top = max((n for _label, n in stages), default=0)
    if top:
        step = max(1, math.ceil(top / 5))     # whole cases on the axis, five marks or so
        chart.y_labels = list(range(0, top + step, step))
        chart.add(title, [n for _label, n in ordered])
    return _svg(chart)


def grades(rows: list[tuple[str, float | None, tuple[str, float] | None, bool]], title: str, share_label: str,
           limit_label: str, empty: str) -> bytes:
    """Headcount by level against the policy: per level (label, share in %, the policy's limit as (its word,
    e.g. "cap", and its share in %) or None, over the cap?), the share as a bar (red when over the cap) beside
    the policy's limit (grey, named by its word)."""
    top = max([v for _l, share, limit, _o in rows for v in (share, limit[1] if limit else None) if v is not None],
              default=0)
    chart = pygal.Bar(**COMMON, style=_style("#212529"), width=720, height=380, title=title, legend_at_bottom=True, no_data_text=empty,
                      value_formatter=lambda v: f"{v:g}%", print_values_position="top",
                      range=(0, min(100, top + 10)))
    chart.x_labels = [label for label, *_rest in rows]
    if rows and any(share is not None for _l, share, _lim, _o in rows):
        chart.add(share_label, [{"value": share, "color": RED} if over else share
                                for _l, share, _lim, over in rows])
        chart.add(limit_label, [{"value": limit[1], "formatter": _named(limit[0])} if limit else None
                                for _l, _s, limit, _o in rows])
    return _svg(chart)


def _named(word: str):
    return lambda v: f"{word} {v:g}%"
