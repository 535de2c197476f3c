"""page.py — writes the report's blocks as OUT_DIR/README.md and OUT_DIR/index.html (one self-contained page:
inline style, no scripts or fonts from elsewhere; PNGs and sounds beside it). Blocks: ("h2"|"h3"|"p", text),
("ul", [text]), ("table", {"headers", "rows"}), ("img"|"audio", file, caption), ("findings", [finding])."""
import html
import os

STYLE = ("body{font-family:sans-serif;max-width:1150px;margin:2em auto;padding:0 1em;color:#222}"
         "table{border-collapse:collapse;margin:.5em 0 1.5em;font-size:13px}"
         "td,th{border:1px solid #ccc;padding:3px 7px;text-align:left;vertical-align:top}"
         "th{background:#f3f3f3}.note{background:#fff6d6;padding:.6em 1em;border-left:4px solid #e0b000}"
         "img{max-width:100%;border:1px solid #eee;margin:.5em 0}li{margin:.3em 0}.cav{color:#8a5a00}")


def md_table(t):
    if not t["rows"]:
        return "_(none)_\n"
    cell = lambda c: str(c).replace("|", "\\|")
    lines = ["| " + " | ".join(t["headers"]) + " |", "|" + "---|" * len(t["headers"])]
    return "\n".join(lines + ["| " + " | ".join(cell(c) for c in row) + " |" for row in t["rows"]]) + "\n"


def html_table(t):
    if not t["rows"]:
        return "<p><em>(none)</em></p>"
    h = "".join(f"<th>{html.escape(x)}</th>" for x in t["headers"])
    rows = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>" for row in t["rows"])
    return f"<table><thead><tr>{h}</tr></thead><tbody>{rows}</tbody></table>"


def md_finding(f):
    line = f"- **{f['claim']}** ({f['source']}): **{f['status']}**. " + "; ".join(f["evidence"])
    return line + "".join(f"\n  - caveat: {c}" for c in f.get("caveats", []))


def html_finding(f):
    e = html.escape
    cav = "".join(f"<br><span class='cav'>caveat: {e(c)}</span>" for c in f.get("caveats", []))
    return f"<li><b>{e(f['claim'])}</b> ({e(f['source'])}): <b>{e(f['status'])}</b>. {e('; '.join(f['evidence']))}{cav}</li>"


def to_md(block):
    kind = block[0]
    if kind in ("h2", "h3"):
        return ("## " if kind == "h2" else "### ") + block[1] + "\n"
    if kind == "p":
        return block[1] + "\n"
    if kind == "ul":
        return "\n".join(f"- {x}" for x in block[1]) + "\n"
    if kind == "table":
        return md_table(block[1])
    if kind == "img":
        return f"![{block[2]}]({block[1]})\n"
    if kind == "audio":
        return f"- sound: [{block[2]}]({block[1]})\n"
    return "\n".join(md_finding(f) for f in block[1]) + "\n"


def to_html(block):
    kind, e = block[0], html.escape
    if kind in ("h2", "h3", "p"):
        return f"<{kind}>{e(block[1])}</{kind}>"
    if kind == "ul":
        return "<ul>" + "".join(f"<li>{e(x)}</li>" for x in block[1]) + "</ul>"
    if kind == "table":
        return html_table(block[1])
    if kind == "img":
        return f"<figure><img src='{e(block[1])}' alt='{e(block[2])}'><figcaption>{e(block[2])}</figcaption></figure>"
    if kind == "audio":
        return f"<p>{e(block[2])}: <audio controls src='{e(block[1])}'></audio></p>"
    return "<ul>" + "".join(html_finding(f) for f in block[1]) + "</ul>"


def render(title, note, doc, out_dir):
    md = [f"# {title}\n"] + ([f"> {note}\n"] if note else []) + [to_md(b) for b in doc]
    with open(os.path.join(out_dir, "README.md"), "w") as f:
        f.write("\n".join(md))
    h = [f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
         f"<style>{STYLE}</style></head><body><h1>{html.escape(title)}</h1>"]
    h += [f"<p class='note'>{html.escape(note)}</p>"] if note else []
    h += [to_html(b) for b in doc] + ["</body></html>"]
    with open(os.path.join(out_dir, "index.html"), "w") as f:
        f.write("\n".join(h) + "\n")
