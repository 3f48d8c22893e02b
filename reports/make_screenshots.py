"""README screenshots of the reports:
``python -m nadfit.reports.make_screenshots RUN_DIR [COMPARISON_DIR] [--out-dir DIR]``.

Opens ``RUN_DIR/report.html`` (and ``COMPARISON_DIR/comparison.html`` when given) — written by
``nadfit run-all`` / ``nadfit report`` / ``nadfit report-compare``; this layer does not load runs —
in headless Chromium and writes ``reports/screenshots/report.png`` / ``comparison.png``: the top of
the page (banner, header, first sections), palette-quantised to stay under ``MAX_BYTES``.
"""

from __future__ import annotations

import sys
from pathlib import Path

from nadfit.reports.browser import inspect_page

OUT_DIR = Path(__file__).resolve().parent / "screenshots"
MAX_BYTES = 400_000


def shrink_png(path: Path, max_bytes: int = MAX_BYTES) -> int:
    """Quantise to 128 colours and downscale until the file is below ``max_bytes``."""
    from PIL import Image

    im = Image.open(path).convert("RGB")
    scale = 1.0
    while True:
        w, h = int(im.width * scale), int(im.height * scale)
        small = im.resize((w, h), Image.LANCZOS) if scale < 1 else im
        small.quantize(colors=128, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE).save(
            path, optimize=True)
        size = path.stat().st_size
        if size <= max_bytes or scale < 0.3:
            return size
        scale *= 0.85


def screenshot(html: Path, out: Path, width: int = 1100, height: int = 1500) -> int:
    info = inspect_page(html, screenshot=out, width=width, height=height, full_page=False)
    if info["errors"]:
        raise SystemExit(f"browser errors in {html}: {info['errors']}")
    return shrink_png(out)


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    out_dir = OUT_DIR
    if "--out-dir" in args:
        i = args.index("--out-dir")
        if i + 1 >= len(args):
            print("nadfit: error: --out-dir needs a folder", file=sys.stderr)
            return 2
        out_dir = Path(args[i + 1])
        del args[i: i + 2]
    if not args:
        print(__doc__, file=sys.stderr)
        return 2
    pages = [(Path(args[0]), "report.html")] + ([(Path(args[1]), "comparison.html")] if len(args) > 1 else [])
    for folder, name in pages:
        html = folder / name if folder.is_dir() else folder
        if not html.is_file():
            print(f"nadfit: error: {html} does not exist; render it first (nadfit report / report-compare)",
                  file=sys.stderr)
            return 2
    out_dir.mkdir(parents=True, exist_ok=True)
    for folder, name in pages:
        html = folder / name if folder.is_dir() else folder
        png = out_dir / name.replace(".html", ".png")
        print(f"{png}: {screenshot(html, png)} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
