"""The one-file HTML report (``RUN/report.html``), converted from ``RUN/report.md``.

This module owns the page: report.md through the ``markdown`` package (tables, fenced code, a
table of contents), every chart embedded as a ``data:image/png;base64`` URI, a small inline
stylesheet that also prints well, and nothing that would make the browser ask the network for
anything: no fonts, scripts or external images, a Content-Security-Policy that forbids them,
and raw HTML in the Markdown (a scenario docstring, an error message) escaped, never passed on.
Links to other sites become plain text. Every section folds (``<details>``, the answer open), so
the page opens short. The file opens the same anywhere, offline.
"""

from __future__ import annotations

import base64
import html
import re
import xml.etree.ElementTree as ET
from pathlib import Path
from urllib.parse import unquote

import markdown
from markdown.extensions import Extension
from markdown.treeprocessors import Treeprocessor

from harness import schema
from harness.fileio import atomic_write_text

IMAGE_TYPES = {".png": "image/png", ".svg": "image/svg+xml", ".jpg": "image/jpeg"}
TOC_MARKER = "[gatebench-contents]"
NUMBER = re.compile(r"^(?:–|[-+]?[\d,]*\.?\d+\s*(?:%|×)?(?:\s*–\s*[-+]?[\d,]*\.?\d+)?)$")
# Only inline styles and embedded images may load; everything else is refused by the browser.
CSP = (
    "default-src 'none'; img-src data:; style-src 'unsafe-inline'; base-uri 'none'; "
    "form-action 'none'"
)

STYLE = """
:root { color-scheme: light; }
body { margin: 0; background: #fff; color: #1b1b1b; font: 15px/1.55 system-ui, -apple-system,
  "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
main { max-width: 72rem; margin: 0 auto; padding: 1.5rem 2rem 4rem; }
h1 { font-size: 1.7rem; margin: .4rem 0 .8rem; }
h2 { font-size: 1.3rem; margin-top: 2.4rem; padding-bottom: .2rem; border-bottom: 1px solid #ddd; }
h3 { font-size: 1.1rem; margin-top: 1.6rem; }
a { color: #0b57a4; }
code { font: .86em ui-monospace, SFMono-Regular, Menlo, Consolas, "Liberation Mono", monospace;
  background: #f2f2f2; padding: .05rem .3rem; border-radius: 3px; }
pre { background: #f6f6f6; padding: .8rem 1rem; overflow-x: auto; border-radius: 4px; }
pre code { background: none; padding: 0; }
blockquote { margin: 1rem 0; padding: .5rem 1rem; border-left: 4px solid #d9822b;
  background: #fff6ec; }
blockquote p { margin: .3rem 0; }
table { display: block; max-width: 100%; overflow-x: auto; border-collapse: collapse;
  margin: .8rem 0 1.2rem; font-size: .84rem; font-variant-numeric: tabular-nums; }
th, td { border: 1px solid #d4d4d4; padding: .25rem .55rem; text-align: left; vertical-align: top; }
th { background: #f1f3f5; white-space: nowrap; }
td.num { text-align: right; white-space: nowrap; }
td:first-child { white-space: nowrap; }
tbody tr:nth-child(even) { background: #fafafa; }
details > summary { cursor: pointer; list-style-position: outside; }
details > summary > h2 { display: inline-block; width: calc(100% - 1.5rem); }
figure { margin: 1.4rem 0 1.8rem; }
figure img { display: block; max-width: 100%; height: auto; border: 1px solid #e4e4e4; }
figcaption { margin-top: .35rem; color: #444; font-size: .92rem; font-style: italic; }
.toc { margin: 1rem 0 1.5rem; padding: .6rem 1.2rem; background: #f7f8fa; border: 1px solid #e4e6ea;
  border-radius: 4px; font-size: .92rem; }
.toc .toctitle { font-weight: 600; }
.toc ul { margin: .3rem 0; padding-left: 1.2rem; columns: 2 18rem; }
.missing { color: #a00; font-style: italic; }
@media print {
  body { font-size: 10pt; }
  main { max-width: none; padding: 0; }
  .toc { display: none; }
  a { color: inherit; text-decoration: none; }
  h2, h3 { break-after: avoid; }
  figure, img, tr, blockquote, pre { break-inside: avoid; }
  table { display: table; font-size: 7.5pt; }
  th, td { padding: .1rem .25rem; }
}
""".strip()


def data_uri(path: Path) -> str:
    """A file as a base64 ``data:`` URI of its image type."""
    kind = IMAGE_TYPES[path.suffix.lower()]
    return f"data:{kind};base64,{base64.b64encode(path.read_bytes()).decode('ascii')}"


def local_file(run_dir: Path, reference: str) -> Path | None:
    """The image file a relative reference in report.md names, None when it names anything
    else: another scheme, an absolute path, a file outside the run folder, a missing file."""
    if not reference or re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*:", reference) or reference[0] in "/\\":
        return None
    root = run_dir.resolve()
    path = (root / unquote(reference.split("#")[0].split("?")[0])).resolve()
    if not path.is_relative_to(root) or path.suffix.lower() not in IMAGE_TYPES:
        return None
    return path if path.is_file() else None


class _SelfContained(Treeprocessor):
    """Embeds local images, drops links elsewhere, and turns chart + caption into a figure."""

    def __init__(self, md: markdown.Markdown, run_dir: Path) -> None:
        super().__init__(md)
        self.run_dir = run_dir

    def run(self, root: ET.Element) -> None:
        for parent in list(root.iter()):
            for index, element in enumerate(list(parent)):
                if element.tag == "img":
                    parent[index] = self._image(element)
                elif element.tag == "a":
                    self._link(element)
                elif element.tag == "td" and NUMBER.match("".join(element.itertext()).strip()):
                    element.set("class", "num")
        self._figures(root)

    def _image(self, img: ET.Element) -> ET.Element:
        path = local_file(self.run_dir, img.get("src", ""))
        if path is None:
            missing = ET.Element("span", {"class": "missing"})
            missing.text = f"[image not available: {img.get('alt') or img.get('src', '')}]"
            missing.tail = img.tail
            return missing
        img.set("src", data_uri(path))
        img.attrib.pop("title", None)
        return img

    @staticmethod
    def _link(anchor: ET.Element) -> None:
        href = anchor.get("href", "")
        if href.startswith("#"):
            return
        # Any other target (another site, a local file) leaves the page: keep the words only.
        anchor.tag = "span"
        anchor.attrib.clear()
        if href and href not in "".join(anchor.itertext()):
            anchor.tail = f" ({href}){anchor.tail or ''}"

    @staticmethod
    def _figures(root: ET.Element) -> None:
        """<p><img></p><p><em>caption</em></p> -> <figure><img><figcaption>."""
        children = list(root)
        for index, element in enumerate(children):
            if not _only_child(element, "p", "img"):
                continue
            element.tag = "figure"
            following = children[index + 1] if index + 1 < len(children) else None
            if following is not None and _only_child(following, "p", "em"):
                caption = following[0]
                caption.tag = "figcaption"
                caption.tail = None
                element.append(caption)
                root.remove(following)


class _Folding(Treeprocessor):
    """Each section (an h2 and what follows it up to the next h2) folds into <details>, its
    heading the <summary>: the page opens short. The first section (the answer) stays open;
    a link to a heading inside a closed section opens it in browsers that support it, and
    the heading itself is always visible."""

    def run(self, root: ET.Element) -> None:
        children = list(root)
        if not any(element.tag == "h2" for element in children):
            return
        for element in children:
            root.remove(element)
        section: ET.Element | None = None
        for element in children:
            if element.tag == "h2":
                section = ET.SubElement(
                    root, "details", {"open": "open"} if section is None else {}
                )
                ET.SubElement(section, "summary").append(element)
            elif section is not None:
                section.append(element)
            else:
                root.append(element)


def _only_child(element: ET.Element, tag: str, child: str) -> bool:
    return (
        element.tag == tag
        and len(element) == 1
        and element[0].tag == child
        and not (element.text or "").strip()
        and not (element[0].tail or "").strip()
    )


class _SelfContainedExtension(Extension):
    def __init__(self, run_dir: Path) -> None:
        super().__init__()
        self.run_dir = run_dir

    def extendMarkdown(self, md: markdown.Markdown) -> None:  # the name is markdown's API
        # Raw HTML in the text is escaped: a docstring or error message never becomes markup.
        md.preprocessors.deregister("html_block")
        md.inlinePatterns.deregister("html")
        # After the inline processor (priority 20) has made the <img> and <a> elements.
        md.treeprocessors.register(_SelfContained(md, self.run_dir), "gatebench_inline", 15)
        # After the table of contents (priority 5) has given every heading its id.
        md.treeprocessors.register(_Folding(md), "gatebench_folding", 1)


def render_html(markdown_text: str, run_dir: Path | str) -> str:
    """The whole page for a report's Markdown, images resolved against ``run_dir``."""
    first_heading = markdown_text.find("\n## ")
    second_heading = markdown_text.find("\n## ", first_heading + 1) if first_heading >= 0 else -1
    at = second_heading if second_heading >= 0 else first_heading
    if at >= 0:  # the contents go after the first section (the answer), before the rest
        markdown_text = f"{markdown_text[:at]}\n\n{TOC_MARKER}\n{markdown_text[at:]}"
    converter = markdown.Markdown(
        extensions=[
            "tables",
            "fenced_code",
            _SelfContainedExtension(Path(run_dir)),
            "toc",
        ],
        extension_configs={
            "toc": {"marker": TOC_MARKER, "toc_depth": "2-2", "title": "Contents"},
        },
        output_format="html",
    )
    body = converter.convert(markdown_text)
    heading = markdown_text.splitlines()[0].lstrip("# ").strip() if markdown_text else ""
    title = html.escape(heading or "gatebench report")
    return "\n".join(
        [
            "<!DOCTYPE html>",
            '<html lang="en">',
            "<head>",
            '<meta charset="utf-8">',
            f'<meta http-equiv="Content-Security-Policy" content="{CSP}">',
            '<meta name="referrer" content="no-referrer">',
            '<meta name="viewport" content="width=device-width, initial-scale=1">',
            f"<title>{title}</title>",
            f"<style>\n{STYLE}\n</style>",
            "</head>",
            "<body>",
            "<main>",
            body,
            "</main>",
            "</body>",
            "</html>",
            "",
        ]
    )


def write_html(run_dir: Path | str) -> Path:
    """Convert ``RUN/report.md`` into ``RUN/report.html`` (written atomically); its path."""
    run_dir = Path(run_dir)
    text = (run_dir / schema.REPORT_MD).read_text(encoding="utf-8")
    return atomic_write_text(run_dir / schema.REPORT_HTML, render_html(text, run_dir))
