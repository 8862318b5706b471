"""Server-rendered SVG charts: the same markup works in a page, a mail and a PDF (no
JavaScript, no CDN). Presentation attributes only (the CSP forbids inline styles);
every label is escaped. Each chart carries a <title> and an aria-label, and the page
shows the same figures in a table beside it."""
from decimal import Decimal

from markupsafe import Markup, escape

SERIES = ("#1f5fa8", "#c2823a")  # this period, the comparison period
FONT = 'font-family="system-ui, sans-serif" font-size="11"'


def _num(v) -> float:
    return float(v) if isinstance(v, (int, float, Decimal)) else 0.0


def short_money(v) -> str:
    v = _num(v)
    for div, suffix in ((1e9, "bn"), (1e6, "m"), (1e3, "k")):
        if abs(v) >= div:
            return f"£{v / div:,.1f}{suffix}"
    return f"£{v:,.0f}"


def _nice_max(v: float) -> float:
    if v <= 0:
        return 1.0
    mag = 10 ** (len(str(int(v))) - 1)
    for step in (1, 2, 2.5, 5, 10):
        if v <= step * mag:
            return step * mag
    return 10 * mag


def bars(title: str, rows, label_key: str, keys: tuple, names: tuple, width: int = 640) -> Markup:
    """Horizontal bars, one group per row, one bar per key (e.g. this month and the same
    month last year)."""
    rows = list(rows)
    label_w, bar_h, gap = 170, 12, 8
    group_h = bar_h * len(keys) + gap
    top = 26
    height = top + group_h * max(len(rows), 1) + 8
    vmax = _nice_max(max([_num(r[k]) for r in rows for k in keys] + [0]))
    plot_w = width - label_w - 70
    out = [f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" aria-label="{escape(title)}" '
           f'xmlns="http://www.w3.org/2000/svg" {FONT}><title>{escape(title)}</title>']
    x = label_w
    for i, name in enumerate(names):
        out.append(f'<rect x="{x}" y="6" width="10" height="10" fill="{SERIES[i % 2]}"/>'
                   f'<text x="{x + 14}" y="15">{escape(name)}</text>')
        x += 24 + 7 * len(name)
    for n, r in enumerate(rows):
        y = top + n * group_h
        label = str(r[label_key] or "")
        out.append(f'<text x="{label_w - 6}" y="{y + bar_h * len(keys) / 2 + 4:.1f}" text-anchor="end">'
                   f'{escape(label[:26])}</text>')
        for i, k in enumerate(keys):
            v = _num(r[k])
            w = max(plot_w * v / vmax, 0)
            by = y + i * bar_h
            out.append(f'<rect x="{label_w}" y="{by}" width="{w:.1f}" height="{bar_h - 2}" fill="{SERIES[i % 2]}">'
                       f'<title>{escape(label)}, {escape(names[i])}: {escape(short_money(v))}</title></rect>'
                       f'<text x="{label_w + w + 4:.1f}" y="{by + bar_h - 3}" fill="#444">{escape(short_money(v))}</text>')
    if not rows:
        out.append(f'<text x="{label_w}" y="{top + 12}">No spend in this period.</text>')
    out.append("</svg>")
    return Markup("".join(out))


def lines(title: str, points, x_key: str, keys: tuple, names: tuple, width: int = 640, height: int = 220,
          compact: bool = False, scale_max=None) -> Markup:
    """One line per key over the x values (e.g. monthly spend this year and last year).
    scale_max: the top of the y axis (small multiples share one, so their heights compare);
    a compact chart labels it in its top-left corner."""
    points = list(points)
    left, right, top, bottom = (8, 8, 18, 18) if compact else (64, 16, 26, 34)
    plot_w, plot_h = width - left - right, height - top - bottom
    vals = [_num(p[k]) for p in points for k in keys if p[k] is not None]
    vmax = _nice_max(max(vals + [_num(scale_max or 0), 0]))
    n = max(len(points) - 1, 1)
    out = [f'<svg class="chart{" mini" if compact else ""}" viewBox="0 0 {width} {height}" role="img" '
           f'aria-label="{escape(title)}" xmlns="http://www.w3.org/2000/svg" {FONT}><title>{escape(title)}</title>']
    if not compact:
        for i in range(5):
            v = vmax * i / 4
            y = top + plot_h - plot_h * i / 4
            out.append(f'<line x1="{left}" x2="{width - right}" y1="{y:.1f}" y2="{y:.1f}" stroke="#e3e3e3"/>'
                       f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">{escape(short_money(v))}</text>')
        x = left
        for i, name in enumerate(names):
            out.append(f'<rect x="{x}" y="6" width="10" height="10" fill="{SERIES[i % 2]}"/>'
                       f'<text x="{x + 14}" y="15">{escape(name)}</text>')
            x += 24 + 7 * len(name)
        step = max(1, len(points) // 8)
        for i, p in enumerate(points):
            if i % step == 0:
                out.append(f'<text x="{left + plot_w * i / n:.1f}" y="{height - 12}" text-anchor="middle">'
                           f'{escape(_xlabel(p[x_key]))}</text>')
    for s, k in enumerate(keys):
        pts = [(left + plot_w * i / n, top + plot_h - plot_h * _num(p[k]) / vmax)
               for i, p in enumerate(points) if p[k] is not None]
        if pts:
            path = " ".join(f"{x:.1f},{y:.1f}" for x, y in pts)
            out.append(f'<polyline points="{path}" fill="none" stroke="{SERIES[s % 2]}" stroke-width="2"/>')
    if compact and points:
        out.append(f'<line x1="{left}" x2="{width - right}" y1="{top}" y2="{top}" stroke="#e3e3e3"/>'
                   f'<text x="{left}" y="{top - 5}" fill="#666">{escape(short_money(vmax))}</text>')
        out.append(f'<text x="{left}" y="{height - 4}">{escape(_xlabel(points[0][x_key]))}</text>'
                   f'<text x="{width - right}" y="{height - 4}" text-anchor="end">'
                   f'{escape(_xlabel(points[-1][x_key]))}</text>')
    if not points:
        out.append(f'<text x="{left + 8}" y="{top + 16}">No spend in this period.</text>')
    out.append("</svg>")
    return Markup("".join(out))


def _xlabel(v) -> str:
    return v.strftime("%b %y") if hasattr(v, "strftime") else str(v)
