#!/usr/bin/env python3
"""Checks that the repository's documentation links resolve (ctest "docs: relative links resolve").

- In every Markdown file: each relative link [text](path#anchor) names a file or folder that
  exists, and its anchor (when there is one) is a heading of the target Markdown file, using
  GitHub's rule for heading anchors. Links with a scheme (https:, mailto:) are not followed.
  Text inside code blocks and code spans is not read.
- In source files: each cite of a doc with an anchor ("docs/protocol.md#resume") names a heading
  of that doc. A cite of a docs/ file that is not in the tree is only printed (a doc may arrive
  from parallel work); every other failure makes the exit status 1.

Usage: tools/check_doc_links.py [SOURCE_DIR]   (default: the repository holding this script)
"""
import os
import re
import sys
from collections import Counter

SKIP_DIRS = {".git", "node_modules", "corpus"}
SOURCE_EXTS = (".cpp", ".hpp", ".h", ".py", ".sh", ".yaml", ".yml", ".json", ".mjs", ".txt")

FENCE = re.compile(r"^\s*(```|~~~)")
HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
LINK = re.compile(r"!?\[(?:[^\]\\]|\\.)*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
REFERENCE = re.compile(r"^\s*\[[^\]]+\]:\s+(\S+)")
EXPLICIT_ANCHOR = re.compile(r"<a\s+(?:id|name)=\"([^\"]+)\"")
CODE_SPAN = re.compile(r"(`+)(.+?)\1")
CITE = re.compile(r"\bdocs/([A-Za-z0-9_.-]+\.md)(#[A-Za-z0-9_-]+)?")


def walk(root, keep):
    for top, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d not in SKIP_DIRS and not d.startswith("build"))
        for name in sorted(files):
            if keep(name):
                yield os.path.join(top, name)


def prose_lines(path):
    """(line number, text) of a Markdown file outside fenced code blocks."""
    fenced = False
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            if FENCE.match(line):
                fenced = not fenced
                continue
            if not fenced:
                yield number, line.rstrip("\n")


def slug(heading):
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces become '-'."""
    text = CODE_SPAN.sub(lambda m: m.group(2), heading)
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text)  # a link keeps its text
    text = re.sub(r"<[^>]+>", "", text)  # inline HTML
    text = text.strip().lower()
    text = "".join(c for c in text if c.isalnum() or c in " -_")
    return text.replace(" ", "-")


_anchors = {}


def anchors_of(path):
    if path not in _anchors:
        seen = Counter()
        found = set()
        for _, line in prose_lines(path):
            for explicit in EXPLICIT_ANCHOR.findall(line):
                found.add(explicit)
            m = HEADING.match(line)
            if not m:
                continue
            base = slug(m.group(2))
            found.add(base if seen[base] == 0 else f"{base}-{seen[base]}")
            seen[base] += 1
        _anchors[path] = found
    return _anchors[path]


def check_target(origin, target, root):
    """An error message for a relative link target, or None when it resolves."""
    if re.match(r"^[A-Za-z][A-Za-z0-9+.-]*:", target) or target.startswith("//"):
        return None  # https:, mailto:, ... : not ours to check
    path, _, anchor = target.partition("#")
    if path:
        full = os.path.normpath(os.path.join(os.path.dirname(origin), path))
        if path.startswith("/"):
            full = os.path.normpath(os.path.join(root, path.lstrip("/")))
        if not os.path.exists(full):
            return f"{target}: no such file"
    else:
        full = origin
    if anchor and full.endswith(".md") and os.path.isfile(full):
        if anchor not in anchors_of(full):
            return f"{target}: no heading with anchor #{anchor} in {os.path.relpath(full, root)}"
    return None


def main():
    root = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else
                           os.path.join(os.path.dirname(__file__), ".."))
    errors = []
    links = 0
    for md in walk(root, lambda n: n.endswith(".md")):
        for number, line in prose_lines(md):
            line = CODE_SPAN.sub("", line)
            targets = LINK.findall(line) + REFERENCE.findall(line)
            for target in targets:
                links += 1
                problem = check_target(md, target, root)
                if problem:
                    errors.append(f"{os.path.relpath(md, root)}:{number}: {problem}")

    cites = 0
    for source in walk(root, lambda n: n.endswith(SOURCE_EXTS) or n == "Makefile"):
        if source.startswith(os.path.join(root, "docs") + os.sep):
            continue
        with open(source, encoding="utf-8", errors="replace") as f:
            for number, line in enumerate(f, 1):
                for name, anchor in CITE.findall(line):
                    cites += 1
                    where = f"{os.path.relpath(source, root)}:{number}"
                    doc = os.path.join(root, "docs", name)
                    if not os.path.isfile(doc):
                        print(f"note: {where}: cites docs/{name}, which is not in the tree")
                        continue
                    if anchor and anchor[1:] not in anchors_of(doc):
                        errors.append(f"{where}: docs/{name}{anchor}: no such heading")

    for e in errors:
        print(e)
    print(f"{links} Markdown links and {cites} cites of docs/ checked, {len(errors)} broken")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
