"""Rendering a report — a list of blocks — as one self-contained HTML page and its Markdown twin.

The HTML page embeds every figure as a base64 PNG and its CSS inline; it loads nothing else (no script, font,
stylesheet or network request), so it opens from a file, offline. The Markdown twin links the same PNGs from a
``report_files/`` folder next to it.

Blocks are tuples: ``("h2", text)``, ``("h3", text)``, ``("p", text)``, ``("banner", text)`` (shown at the top),
``("table", table)`` (a :mod:`expclip.report.tables` dict), ``("figures", [(png_path, caption), ...])``,
``("kv", [(key, value), ...])``, ``("grid", headers, rows)`` (plain strings), ``("details", summary, text)``.
"""

from __future__ import annotations

import base64
import html
import re
from pathlib import Path

from .tables import best_rows, digits, format_value

CSS = """
:root { --fg:#1d2330; --muted:#5b6475; --line:#dfe3ea; --bg:#ffffff; --soft:#f5f7fa; --accent:#0b5cad;
        --good:#0a7a3d; --bad:#b3261e; }
* { box-sizing: border-box; }
body { margin:0; background:var(--soft); color:var(--fg);
       font:15px/1.55 -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, "Noto Sans", sans-serif; }
header { background:#10243e; color:#fff; padding:28px 0 22px; }
header .wrap h1 { margin:0 0 4px; font-size:26px; font-weight:650; letter-spacing:-0.01em; }
header .wrap p { margin:0; color:#c7d3e3; font-size:14px; }
.wrap { max-width:1180px; margin:0 auto; padding:0 28px; }
main .wrap { padding-top:20px; padding-bottom:60px; }
.banner { margin:18px 0 6px; padding:12px 16px; border-radius:8px; background:#fff4e5; border:2px solid #e08a00;
          color:#6b3d00; font-weight:650; }
nav.toc { background:var(--bg); border:1px solid var(--line); border-radius:10px; padding:12px 18px; margin:18px 0; }
nav.toc b { display:block; margin-bottom:4px; }
nav.toc a { color:var(--accent); text-decoration:none; margin-right:18px; white-space:nowrap; }
section { background:var(--bg); border:1px solid var(--line); border-radius:10px; padding:6px 22px 18px;
          margin:18px 0; }
h2 { font-size:21px; margin:18px 0 8px; padding-bottom:6px; border-bottom:1px solid var(--line); }
h3 { font-size:16.5px; margin:22px 0 6px; }
p { margin:6px 0 10px; }
.caption { color:var(--muted); font-size:13px; margin:2px 0 8px; }
.scroll { overflow-x:auto; }
table.t { border-collapse:collapse; font-size:13.5px; margin:4px 0 14px; min-width:40%; }
table.t th, table.t td { padding:6px 11px; border-bottom:1px solid var(--line); text-align:right;
                         white-space:nowrap; font-variant-numeric:tabular-nums; }
table.t th { background:#eef2f7; font-weight:600; text-align:center; white-space:normal; min-width:90px; }
table.t td.label, table.t th.label, table.t td.section { text-align:left; }
table.t td.section { color:var(--muted); font-weight:600; }
table.t tr.gain td { background:#fbfcfe; font-style:italic; }
table.t tbody tr:hover td { background:#f0f5fb; }
table.t td .best { font-weight:700; }
.pos { color:var(--good); } .neg { color:var(--bad); }
.sd { color:var(--muted); font-size:11.5px; }
table.kv td, table.grid td { text-align:left; white-space:normal; }
table.grid th { text-align:left; }
table.kv td:first-child { color:var(--muted); width:230px; }
.figs { display:flex; flex-wrap:wrap; gap:16px; margin:8px 0 12px; }
figure { margin:0; background:#fff; border:1px solid var(--line); border-radius:8px; padding:8px; max-width:100%; }
figure.half { flex:0 1 calc(50% - 8px); }
figure img { display:block; max-width:100%; height:auto; margin:0 auto; }
figcaption { color:var(--muted); font-size:12.5px; margin-top:4px; max-width:640px; }
details { margin:6px 0 10px; }
summary { cursor:pointer; color:var(--accent); }
pre { background:#f3f5f8; border:1px solid var(--line); border-radius:6px; padding:10px; overflow-x:auto;
      font-size:12px; line-height:1.4; }
footer { color:var(--muted); font-size:12.5px; text-align:center; padding:10px 0 30px; }
"""


def anchor(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "section"


def _cell_html(v: dict | None, metrics: list[str], gain: bool, best: set[str]) -> str:
    """"a / b" (best in bold, gains coloured), and the stds on a quieter second line."""
    if not v:
        return "–"
    parts, sds = [], []
    for m in metrics:
        s = html.escape(format_value({**v, "seeds": 1}, m, gain))
        x = v.get(m)
        if gain and x is not None and round(x, digits(m)) != 0:
            s = f'<span class="{"pos" if x > 0 else "neg"}">{s}</span>'
        parts.append(f'<span class="best">{s}</span>' if m in best else s)
        if v.get("seeds", 1) > 1 and x is not None:
            sds.append(f"± {v[f'{m}_std']:.{digits(m)}f}")
    return " / ".join(parts) + (f'<br><span class="sd">{" / ".join(sds)}</span>' if sds else "")


def table_html(table: dict) -> str:
    """A :mod:`expclip.report.tables` dict as an HTML table; best score per column in bold, gains coloured."""
    cols, metrics = table["columns"], table["metrics"]
    sections = any(r["section"] for r in table["rows"])
    mt = " / ".join(m.upper() if m in ("uar", "war") else m for m in metrics)
    head = ('<th class="label">backbone</th>' if sections else "") + '<th class="label">model</th>'
    head += "".join(f"<th>{html.escape(table['column_titles'].get(c, c))}<br><span class='sd'>{mt}</span></th>"
                    for c in cols)
    best = best_rows(table)
    body, last = [], object()
    for i, r in enumerate(table["rows"]):
        tds = ""
        if sections:
            tds += f'<td class="section">{html.escape(r["section"] or "") if r["section"] != last else ""}</td>'
            last = r["section"]
        tds += f'<td class="label">{html.escape(r["label"])}</td>'
        for c in cols:
            marks = {m for m in metrics if i in best.get((c, m), ())}
            tds += f"<td>{_cell_html(r['values'].get(c), metrics, r['kind'] == 'gain', marks)}</td>"
        body.append(f'<tr class="{r["kind"]}">{tds}</tr>')
    return (f'<div class="scroll"><table class="t" data-title="{html.escape(table["title"])}"><thead><tr>{head}'
            f'</tr></thead><tbody>{"".join(body)}</tbody></table></div>'
            f'<p class="caption">{html.escape(table["caption"])}</p>')


def _png_data_uri(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(Path(path).read_bytes()).decode("ascii")


def _figure_class(path: Path) -> str:
    """Narrow figures (confusion matrices, small bar charts) go two per row, wide ones take the row."""
    from PIL import Image

    with Image.open(path) as im:
        return "half" if im.size[0] <= 720 else "wide"


def render_html(blocks: list[tuple], title: str, subtitle: str) -> str:
    """The self-contained page: inline CSS, figures as data URIs, a table of contents of the h2 sections."""
    toc = [f'<a href="#{anchor(b[1])}">{html.escape(b[1])}</a>' for b in blocks if b[0] == "h2"]
    out, open_section = [], False
    for b in blocks:
        kind = b[0]
        if kind == "h2":
            out.append(("</section>" if open_section else "") + f'<section id="{anchor(b[1])}"><h2>'
                       f"{html.escape(b[1])}</h2>")
            open_section = True
        elif kind == "h3":
            out.append(f'<h3 id="{anchor(b[1])}">{html.escape(b[1])}</h3>')
        elif kind == "p":
            out.append(f"<p>{html.escape(b[1])}</p>")
        elif kind == "table":
            out.append(table_html(b[1]))
        elif kind == "figures":
            figs = "".join(f'<figure class="{_figure_class(p)}"><img src="{_png_data_uri(p)}" '
                           f'alt="{html.escape(c)}"><figcaption>{html.escape(c)}</figcaption></figure>'
                           for p, c in b[1])
            out.append(f'<div class="figs">{figs}</div>')
        elif kind == "kv":
            rows = "".join(f"<tr><td>{html.escape(str(k))}</td><td>{html.escape(str(v))}</td></tr>" for k, v in b[1])
            out.append(f'<div class="scroll"><table class="t kv"><tbody>{rows}</tbody></table></div>')
        elif kind == "grid":
            head = "".join(f'<th class="label">{html.escape(h)}</th>' for h in b[1])
            rows = "".join("<tr>" + "".join(f"<td>{html.escape(str(v))}</td>" for v in r) + "</tr>" for r in b[2])
            out.append(f'<div class="scroll"><table class="t grid"><thead><tr>{head}</tr></thead><tbody>{rows}'
                       "</tbody></table></div>")
        elif kind == "details":
            out.append(f"<details><summary>{html.escape(b[1])}</summary><pre>{html.escape(b[2])}</pre></details>")
    body = "\n".join(out) + ("</section>" if open_section else "")
    banners = "".join(f'<div class="banner" role="alert">{html.escape(b[1])}</div>' for b in blocks if b[0] == "banner")
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
        f"<title>{html.escape(title)}</title><style>{CSS}</style></head><body>"
        f'<header><div class="wrap"><h1>{html.escape(title)}</h1><p>{html.escape(subtitle)}</p></div></header>'
        f'<main><div class="wrap">{banners}<nav class="toc"><b>Contents</b>{"".join(toc)}</nav>\n{body}</div></main>'
        "<footer>Generated by expclip · Exp-CLIP (Zhao et al., WACV 2025, arXiv 2405.19100) · self-contained page, "
        "no network needed</footer></body></html>\n"
    )


def render_markdown(blocks: list[tuple], title: str, subtitle: str, base: Path) -> str:
    """The Markdown twin; figures are linked relative to ``base`` (the report's folder)."""
    from .tables import table_markdown

    out = [f"# {title}", "", f"*{subtitle}*", ""]
    for b in blocks:
        kind = b[0]
        if kind == "h2":
            out += [f"## {b[1]}", ""]
        elif kind == "h3":
            out += [f"### {b[1]}", ""]
        elif kind == "p":
            out += [b[1], ""]
        elif kind == "banner":
            out += [f"> **{b[1]}**", ""]
        elif kind == "table":
            out += [table_markdown(b[1])]
        elif kind == "figures":
            out += [f"![{c}]({Path(p).relative_to(base).as_posix()})  \n*{c}*\n" for p, c in b[1]]
        elif kind == "kv":
            out += ["| | |", "|---|---|"] + [f"| {k} | {str(v).replace('|', '/')} |" for k, v in b[1]] + [""]
        elif kind == "grid":
            out += ["| " + " | ".join(b[1]) + " |", "|" + "---|" * len(b[1])]
            out += ["| " + " | ".join(str(v).replace("|", "/") for v in r) + " |" for r in b[2]] + [""]
        elif kind == "details":
            out += [f"<details><summary>{b[1]}</summary>", "", "```", b[2], "```", "", "</details>", ""]
    return "\n".join(out) + "\n"
