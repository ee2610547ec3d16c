#!/usr/bin/env python3
"""Grabs the pianoforte editor from an X display and checks that the picture shows controls.

usage: editor_screenshot.py DISPLAY X Y WIDTH HEIGHT OUT.png
Checks: a reasonable size, many distinct colours (text, sliders, the piano roll), not one flat
colour. Needs Pillow (the trainer's environment has it, through matplotlib).
"""
import sys

from PIL import ImageGrab, ImageStat


def main() -> int:
    display, x, y, w, h, out = sys.argv[1], *map(int, sys.argv[2:6]), sys.argv[6]
    image = ImageGrab.grab(xdisplay=display).convert("RGB")
    image = image.crop((x, y, x + w, y + h))
    colours = image.getcolors(maxcolors=1 << 20) or []
    spread = max(ImageStat.Stat(image).stddev)
    # The piano roll: orange/blue note rectangles in the upper part of the window.
    print(f"editor screenshot: {w}x{h}, {len(colours)} distinct colours, brightness spread {spread:.1f}")
    failures = []
    if w < 600 or h < 400:
        failures.append(f"the window is only {w}x{h}")
    if len(colours) < 64:
        failures.append(f"only {len(colours)} colours: the editor did not draw its controls")
    if spread < 10:
        failures.append("the picture is nearly uniform")
    image.save(out)
    print(f"saved {out}")
    for f in failures:
        print("FAIL:", f)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
