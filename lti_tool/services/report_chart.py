"""The compliance trend as a chart: server-rendered SVG for the page (no script, no CDN) and a reportlab
Drawing for the PDF, from the same points, so the page and the paper show the same thing.

Lines are told apart by dash pattern as well as color, and each point carries its value as text (SVG <title>),
so nothing depends on seeing color.
"""
from xml.sax.saxutils import escape

from reportlab.graphics.shapes import Drawing, Line, PolyLine, String
from reportlab.lib import colors

from . import localtime

WIDTH, HEIGHT = 640, 240
LEFT, RIGHT, TOP, BOTTOM = 44, 16, 12, 36
PALETTE = ["#1f4e79", "#b35900", "#2e7d32", "#6a1b9a", "#c62828", "#00838f"]
DASHES = ["", "6 3", "2 3", "8 3 2 3", "1 2", "10 4"]


def _xy(index: int, count: int, percent: float) -> tuple[float, float]:
    span = WIDTH - LEFT - RIGHT
    x = LEFT + (span * index / (count - 1) if count > 1 else span / 2)
    y = TOP + (HEIGHT - TOP - BOTTOM) * (1 - percent / 100)
    return round(x, 1), round(y, 1)


def svg(series: list[tuple[str, list]], title: str) -> str:
    """series: [(label, [(day, percent or None), ...])], all with the same days. Returns an <svg> element."""
    days = [d for d, _ in series[0][1]] if series else []
    n = len(days)
    label = escape(title, {'"': "&quot;"})
    total_height = HEIGHT + 18 * len(series)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {total_height}" role="img" '
             f'aria-label="{label}" class="trend-chart">', f"<title>{escape(title)}</title>"]
    for k, (name, points) in enumerate(series):  # the legend, under the plot: line style, name, last value
        y = HEIGHT + 4 + 18 * k
        dash = DASHES[k % len(DASHES)]
        dash_attr = f' stroke-dasharray="{dash}"' if dash else ""
        last = next((v for _, v in reversed(points) if v is not None), None)
        parts.append(f'<line x1="{LEFT}" y1="{y + 5}" x2="{LEFT + 30}" y2="{y + 5}" '
                     f'stroke="{PALETTE[k % len(PALETTE)]}" stroke-width="2"{dash_attr}/>')
        parts.append(f'<text x="{LEFT + 38}" y="{y + 9}" font-size="12" fill="#222222">{escape(name)}'
                     f"{'' if last is None else f': {last}%'}</text>")
    for pct in (0, 25, 50, 75, 100):
        _, y = _xy(0, 2, pct)
        parts.append(f'<line x1="{LEFT}" y1="{y}" x2="{WIDTH - RIGHT}" y2="{y}" stroke="#cccccc" stroke-width="1"/>')
        parts.append(f'<text x="{LEFT - 6}" y="{y + 4}" text-anchor="end" font-size="11" fill="#333333">{pct}%</text>')
    for i, day in enumerate(days):
        if i % 2 == 0 or i == n - 1:
            x, _ = _xy(i, n, 0)
            parts.append(f'<text x="{x}" y="{HEIGHT - BOTTOM + 16}" text-anchor="middle" font-size="10" '
                         f'fill="#333333">{escape(f"{day:%b} {day:%y}")}</text>')
    for k, (label, points) in enumerate(series):
        color, dash = PALETTE[k % len(PALETTE)], DASHES[k % len(DASHES)]
        coords = [(_xy(i, n, v), v, d) for i, (d, v) in enumerate(points) if v is not None]
        if not coords:
            continue
        path = " ".join(f"{x},{y}" for (x, y), _, _ in coords)
        dash_attr = f' stroke-dasharray="{dash}"' if dash else ""
        parts.append(f'<polyline fill="none" stroke="{color}" stroke-width="2"{dash_attr} points="{path}">'
                     f"<title>{escape(label)}</title></polyline>")
        for (x, y), v, d in coords:
            parts.append(f'<circle cx="{x}" cy="{y}" r="3" fill="{color}"><title>{escape(label)}, '
                         f"{escape(localtime.us_date(d))}: {v}%</title></circle>")
    parts.append("</svg>")
    return "".join(parts)


def drawing(series: list[tuple[str, list]], width: float = 500, height: float = 190) -> Drawing:
    """The same chart for reportlab (points on the page), with a legend line under it."""
    days = [d for d, _ in series[0][1]] if series else []
    n = len(days)
    legend_h = 14 * len(series)
    d = Drawing(width, height + legend_h)
    left, bottom, top = 36, 24 + legend_h, 8
    plot_w, plot_h = width - left - 10, height - 24 - top

    def xy(i, pct):
        return left + (plot_w * i / (n - 1) if n > 1 else plot_w / 2), bottom + plot_h * pct / 100

    for pct in (0, 25, 50, 75, 100):
        _, y = xy(0, pct)
        d.add(Line(left, y, left + plot_w, y, strokeColor=colors.HexColor("#cccccc"), strokeWidth=0.5))
        d.add(String(left - 4, y - 3, f"{pct}%", fontSize=7, textAnchor="end"))
    for i, day in enumerate(days):
        if i % 2 == 0 or i == n - 1:
            x, _ = xy(i, 0)
            d.add(String(x, bottom - 12, f"{day:%b} {day:%y}", fontSize=7, textAnchor="middle"))
    for k, (label, points) in enumerate(series):
        color = colors.HexColor(PALETTE[k % len(PALETTE)])
        dash = [float(v) for v in DASHES[k % len(DASHES)].split()] or None
        coords = [xy(i, v) for i, (_, v) in enumerate(points) if v is not None]
        if len(coords) > 1:
            d.add(PolyLine([c for pt in coords for c in pt], strokeColor=color, strokeWidth=1.5,
                           strokeDashArray=dash))
        y = 4 + 14 * (len(series) - 1 - k)
        d.add(Line(left, y + 3, left + 24, y + 3, strokeColor=color, strokeWidth=1.5, strokeDashArray=dash))
        last = next((v for _, v in reversed(points) if v is not None), None)
        d.add(String(left + 30, y, f"{label}: {'' if last is None else f'{last}%'}", fontSize=8))
    return d
