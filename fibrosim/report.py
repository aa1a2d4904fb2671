"""The main job: run the analyses on the shipped evidence and write one HTML + Markdown report.

Each script in ``analyses/`` answers one question and exposes ``run(out_dir) -> Section``; this
module discovers them in file-name order, runs them, and renders their sections.  The analyses
import fibrosim and never copy it; this module only assembles and renders.
"""

from __future__ import annotations

import datetime as _dt
import html
import importlib.util
import platform
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

import pandas as pd

__all__ = [
    "Figure",
    "Paragraph",
    "Section",
    "Table",
    "Verdict",
    "analyses_dir",
    "render_html",
    "render_markdown",
    "run_report",
]


@dataclass(frozen=True, slots=True)
class Paragraph:
    """Plain text (one paragraph)."""

    text: str


@dataclass(frozen=True, slots=True)
class Table:
    """A table with a caption; numbers are shown as the DataFrame formats them."""

    data: pd.DataFrame
    caption: str
    float_format: str = "{:.3g}"


@dataclass(frozen=True, slots=True)
class Figure:
    """A figure saved under the report folder (``path`` is relative to it)."""

    path: str
    caption: str


@dataclass(frozen=True, slots=True)
class Verdict:
    """A plain-language verdict on one claim of the seed review."""

    claim: str
    verdict: str  # "supported", "partly supported", "not supported", "not testable here"
    reason: str


Block = Paragraph | Table | Figure


@dataclass(frozen=True, slots=True)
class Section:
    """One analysis: its question, its findings and its verdicts."""

    title: str
    question: str
    blocks: tuple[Block, ...] = ()
    verdicts: tuple[Verdict, ...] = ()
    sources: tuple[str, ...] = field(default=())


def analyses_dir() -> Path:
    """The ``analyses/`` folder: the checkout's, or the copy packaged with fibrosim."""
    package = Path(__file__).resolve().parent
    for candidate in (package.parent / "analyses", package / "_analyses"):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(
        f"no analyses folder found (looked in {package.parent / 'analyses'} and "
        f"{package / '_analyses'})."
    )


def _load_script(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"fibrosim_analysis_{path.stem}", path)
    if spec is None or spec.loader is None:  # pragma: no cover - only for unreadable files
        raise ImportError(f"cannot load analysis script {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _format_cell(value: object, float_format: str) -> str:
    if isinstance(value, float):
        if value != value:  # NaN: an empty cell in the evidence, not a number
            return ""
        return float_format.format(value)
    return str(value)


def _table_rows(table: Table) -> tuple[list[str], list[list[str]]]:
    header = [str(c) for c in table.data.columns]
    rows = [
        [_format_cell(v, table.float_format) for v in row]
        for row in table.data.itertuples(index=False, name=None)
    ]
    return header, rows


def render_markdown(sections: Sequence[Section], *, title: str, preamble: str) -> str:
    """Render sections as GitHub-flavoured Markdown."""
    lines = [f"# {title}", "", preamble, ""]
    verdicts = [v for s in sections for v in s.verdicts]
    if verdicts:
        lines += ["## Verdicts on the review's claims", ""]
        lines += ["| claim | verdict | why |", "|---|---|---|"]
        lines += [f"| {v.claim} | **{v.verdict}** | {v.reason} |" for v in verdicts]
        lines.append("")
    for section in sections:
        lines += [f"## {section.title}", "", f"*Question.* {section.question}", ""]
        for block in section.blocks:
            if isinstance(block, Paragraph):
                lines += [block.text, ""]
            elif isinstance(block, Table):
                header, rows = _table_rows(block)
                lines += [f"*{block.caption}*", ""]
                lines.append("| " + " | ".join(header) + " |")
                lines.append("|" + "---|" * len(header))
                lines += ["| " + " | ".join(r) + " |" for r in rows]
                lines.append("")
            else:
                lines += [f"![{block.caption}]({block.path})", "", f"*{block.caption}*", ""]
        if section.sources:
            lines += ["Sources: " + "; ".join(section.sources), ""]
    return "\n".join(lines)


_CSS = """
body { font-family: system-ui, sans-serif; max-width: 70rem; margin: 2rem auto; padding: 0 1rem;
       line-height: 1.45; color: #222; }
table { border-collapse: collapse; margin: 0.5rem 0 1.5rem; font-size: 0.9rem; }
th, td { border: 1px solid #ccc; padding: 0.25rem 0.5rem; text-align: left; vertical-align: top; }
th { background: #f3f3f3; }
caption { caption-side: top; text-align: left; font-style: italic; padding-bottom: 0.25rem; }
figure { margin: 1rem 0 2rem; } figure img { max-width: 100%; }
.verdict-supported { color: #1b6e20; } .verdict-not { color: #a11; }
.question { font-style: italic; }
"""


def render_html(sections: Sequence[Section], *, title: str, preamble: str) -> str:
    """Render sections as one self-contained HTML page (figures are linked PNG files)."""
    esc = html.escape
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{esc(title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{esc(title)}</h1>",
        f"<p>{esc(preamble)}</p>",
    ]
    verdicts = [v for s in sections for v in s.verdicts]
    if verdicts:
        parts.append("<h2>Verdicts on the review's claims</h2><table>")
        parts.append("<tr><th>claim</th><th>verdict</th><th>why</th></tr>")
        for v in verdicts:
            cls = "verdict-supported" if v.verdict == "supported" else "verdict-not"
            parts.append(
                f"<tr><td>{esc(v.claim)}</td><td class='{cls}'><b>{esc(v.verdict)}</b></td>"
                f"<td>{esc(v.reason)}</td></tr>"
            )
        parts.append("</table>")
    for section in sections:
        parts.append(f"<h2>{esc(section.title)}</h2>")
        parts.append(f"<p class='question'>Question: {esc(section.question)}</p>")
        for block in section.blocks:
            if isinstance(block, Paragraph):
                parts.append(f"<p>{esc(block.text)}</p>")
            elif isinstance(block, Table):
                header, rows = _table_rows(block)
                parts.append(f"<table><caption>{esc(block.caption)}</caption><tr>")
                parts += [f"<th>{esc(h)}</th>" for h in header]
                parts.append("</tr>")
                for r in rows:
                    parts.append("<tr>" + "".join(f"<td>{esc(c)}</td>" for c in r) + "</tr>")
                parts.append("</table>")
            else:
                parts.append(
                    f"<figure><img src='{esc(block.path)}' alt='{esc(block.caption)}'>"
                    f"<figcaption>{esc(block.caption)}</figcaption></figure>"
                )
        if section.sources:
            parts.append("<p><small>Sources: " + esc("; ".join(section.sources)) + "</small></p>")
    parts.append("</body></html>")
    return "\n".join(parts)


def run_report(out_dir: Path | str, *, only: Sequence[str] | None = None) -> tuple[Path, Path]:
    """Run every analysis script and write ``report.md`` and ``report.html`` into ``out_dir``.

    Parameters
    ----------
    out_dir : path
        Output folder; created if missing.  Figures go to ``out_dir/figures``.
    only : sequence of str, optional
        Run only the scripts whose file stem contains one of these strings.

    Returns
    -------
    (Path, Path)
        The Markdown and HTML files written.
    """
    out = Path(out_dir)
    (out / "figures").mkdir(parents=True, exist_ok=True)
    scripts = sorted(p for p in analyses_dir().glob("*.py") if not p.name.startswith("_"))
    if only:
        scripts = [p for p in scripts if any(s in p.stem for s in only)]
    sections = [_load_script(p).run(out) for p in scripts]
    import fibrosim

    preamble = (
        f"Generated by fibrosim {fibrosim.__version__} on "
        f"{_dt.datetime.now(_dt.UTC).strftime('%Y-%m-%d %H:%M UTC')} "
        f"(Python {sys.version.split()[0]}, {platform.machine()}). Every number below is computed "
        "from the cited data in studies/; effects are treatment minus control, and for pain, "
        "fatigue, FIQ and depression scores a negative value favours treatment unless a table "
        "says otherwise."
    )
    title = "fibrosim report: fibromyalgia evidence and the next drug-resistant trial"
    md_path, html_path = out / "report.md", out / "report.html"
    md_path.write_text(render_markdown(sections, title=title, preamble=preamble), "utf-8")
    html_path.write_text(render_html(sections, title=title, preamble=preamble), "utf-8")
    return md_path, html_path
