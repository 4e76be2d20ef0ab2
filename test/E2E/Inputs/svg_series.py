"""Summarizes SVG pictures from nnc plot: the title, the panel titles and the
number of points in each series path (parsed as XML, so a malformed file
fails).

  svg_series.py FILE.svg...
"""
import os
import re
import sys
import xml.etree.ElementTree as ET

NS = "{http://www.w3.org/2000/svg}"


def main():
    for path in sys.argv[1:]:
        root = ET.parse(path).getroot()
        texts = [t.text or "" for t in root.iter(NS + "text")]
        panels = [t for t in texts if t in ("loss", "accuracy", "learning rate")]
        # Panel titles appear once each; axis titles repeat them.
        panels = list(dict.fromkeys(panels))
        series = []
        for p in root.iter(NS + "path"):
            if p.get("class") == "series":
                points = len(re.findall(r"[ML]\s*-?[0-9.]+[ ,]-?[0-9.]+", p.get("d", "")))
                series.append(f"{p.get('data-series')} {points} points")
        title = [t for t in root.iter(NS + "text") if t.get("font-weight") == "bold"]
        head = f"title '{title[0].text}'; " if title else ""
        print(f"{os.path.basename(path)}: {head}panels {', '.join(panels)}; {', '.join(series)}")


if __name__ == "__main__":
    main()
