#!/usr/bin/env python3
"""Fails when the book names something that is not there: an {{#include}}
of a missing file or anchor, a relative link to a missing page, or an
image that is not in the book."""

import pathlib
import re
import sys

src = pathlib.Path(__file__).resolve().parent.parent / "book" / "src"
errors = []
pages = sorted(src.glob("*.md"))
for page in pages:
    text = page.read_text(encoding="utf-8")
    for target, anchor in re.findall(r"\{\{#include ([^:}]+)(?::([A-Za-z_][\w-]*))?\}\}", text):
        path = (page.parent / target).resolve()
        if not path.is_file():
            errors.append(f"{page.name}: includes {target}, which does not exist")
            continue
        if anchor:
            body = path.read_text(encoding="utf-8")
            if f"ANCHOR: {anchor}" not in body or f"ANCHOR_END: {anchor}" not in body:
                errors.append(f"{page.name}: {target} has no anchor {anchor!r}")
    for link in re.findall(r"\]\(([^)#:]+\.md)(?:#[^)]*)?\)", text):
        if not (page.parent / link).is_file():
            errors.append(f"{page.name}: links to {link}, which does not exist")
    for image in re.findall(r"!\[[^\]]*\]\(([^)#:]+)\)", text):
        if not (page.parent / image).is_file():
            errors.append(f"{page.name}: shows {image}, which does not exist")
summary = (src / "SUMMARY.md").read_text(encoding="utf-8")
for page in pages:
    if page.name != "SUMMARY.md" and f"({page.name})" not in summary:
        errors.append(f"{page.name} is not in SUMMARY.md")
for error in errors:
    print(error, file=sys.stderr)
sys.exit(1 if errors else 0)
