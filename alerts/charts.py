"""Small server-rendered SVG bar charts: the same markup works in a page, a mail and a
PDF (no JavaScript, no external fonts)."""
from html import escape


def bars(items: list[tuple[str, float]], title: str, unit: str = "", width: int = 520, bar_h: int = 18,
         colour: str = "#b3261e") -> str:
    """Horizontal bars, one per (label, value), labelled with the value."""
    label_w, pad, gap = 150, 8, 6
    top = 26
    height = top + max(len(items), 1) * (bar_h + gap) + pad
    peak = max((v for _, v in items), default=0) or 1
    span = width - label_w - 70
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'viewBox="0 0 {width} {height}" role="img" aria-label="{escape(title)}">',
           f'<text x="0" y="16" font-family="DejaVu Sans, sans-serif" font-size="13" font-weight="bold">'
           f'{escape(title)}</text>']
    if not items:
        out.append(f'<text x="0" y="{top + 14}" font-family="DejaVu Sans, sans-serif" font-size="12" '
                   f'fill="#555">nothing to show</text>')
    for i, (label, value) in enumerate(items):
        y = top + i * (bar_h + gap)
        w = max(1, round(span * value / peak)) if value else 0
        shown = f"{unit}{value:,.0f}" if isinstance(value, float) else f"{unit}{value:,}"
        out.append(f'<text x="{label_w - 6}" y="{y + bar_h - 5}" text-anchor="end" '
                   f'font-family="DejaVu Sans, sans-serif" font-size="12">{escape(str(label))}</text>')
        out.append(f'<rect x="{label_w}" y="{y}" width="{w}" height="{bar_h}" fill="{colour}" rx="2"/>')
        out.append(f'<text x="{label_w + w + 5}" y="{y + bar_h - 5}" font-family="DejaVu Sans, sans-serif" '
                   f'font-size="12">{escape(shown)}</text>')
    out.append("</svg>")
    return "".join(out)
