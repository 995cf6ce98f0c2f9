"""Plain text for notebook output: prose wrapped to the width JupyterLab shows, and
tables without pandas."""
from __future__ import annotations

import textwrap
from typing import Mapping, Optional, Sequence

# printed prose is wrapped at this many columns: JupyterLab breaks a longer output line
# anywhere, mid-word (a 1400 px window with the file browser open shows about 120)
WRAP = 96


def wrap(text: str, width: int = WRAP) -> str:
    """``text`` as lines of at most ``width`` characters, continuation lines indented;
    words and hyphenated names (``CPU-hours``, ``denoise-s30``) are never broken."""
    return textwrap.fill(" ".join(text.split()), width, subsequent_indent="  ", break_long_words=False,
                         break_on_hyphens=False)


def format_rows(rows: Sequence[Mapping], columns: Sequence[str], formats: Optional[Mapping[str, str]] = None) -> str:
    """A plain-text table (no pandas needed): ``columns`` of ``rows``, with
    optional per-column format specs such as ``{"val_psnr": ".2f"}``."""
    formats = formats or {}

    def cell(r, c):
        v = r.get(c, "")
        return format(v, formats[c]) if c in formats and v != "" else str(v)

    body = [[cell(r, c) for c in columns] for r in rows]
    widths = [max([len(c)] + [len(b[i]) for b in body]) for i, c in enumerate(columns)]
    # numbers right-aligned, text left-aligned
    numeric = [all(isinstance(r.get(c), (int, float)) for r in rows) for c in columns]

    def line(vals):
        return "  ".join(v.rjust(w) if n else v.ljust(w) for v, w, n in zip(vals, widths, numeric)).rstrip()

    return "\n".join([line(columns), line(["-" * w for w in widths])] + [line(b) for b in body])


__all__ = ["WRAP", "wrap", "format_rows"]
