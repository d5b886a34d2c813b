#!/usr/bin/env python3
"""Every source has its tests: `dir/name.cpp` has `tests/dir/name_test.cpp`, or a row in the
table "Where each source is tested" of docs/architecture.md that names where it is tested.

Fails for a source with neither, for a row whose source or test files do not exist, and for a
row that is not needed (the source has its own test file). Also fails for a test name with a `;`:
CMake splits the name ctest discovers there, and the halves match no test, so the test never
runs while ctest reports it passed."""
import argparse
import fnmatch
import pathlib
import re
import sys

SOURCE_DIRS = ("gateway", "config", "upstream", "mock")
SECTION = "## Where each source is tested"


def table_rows(text):
    start = text.find(SECTION)
    if start < 0:
        return None
    rows = []
    for line in text[start + len(SECTION):].splitlines():
        if line.startswith("## "):
            break
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 2 or not cells[0].startswith("`"):
            continue
        source = cells[0].strip("`")
        tests = [t for t in re.findall(r"`([^`]+)`", cells[1]) if "/" in t]
        rows.append((source, tests))
    return rows


def check(root):
    errors = []
    rows = table_rows((root / "docs/architecture.md").read_text())
    if rows is None:
        return [f"docs/architecture.md has no section '{SECTION}'"]
    sources = sorted(str(p.relative_to(root)) for d in SOURCE_DIRS
                     for p in (root / d).rglob("*.cpp"))
    used = set()
    for source in sources:
        own = root / "tests" / (source[:-len(".cpp")] + "_test.cpp")
        matching = [i for i, (pattern, _) in enumerate(rows) if fnmatch.fnmatch(source, pattern)]
        if own.exists():
            for i in matching:
                if rows[i][0] == source:
                    errors.append(f"{source}: has {own.relative_to(root)}; drop its row")
            continue
        if not matching:
            errors.append(f"{source}: no tests/{source[:-4]}_test.cpp and no row in "
                          f"docs/architecture.md '{SECTION[3:]}'")
        used.update(matching)
    for i, (pattern, tests) in enumerate(rows):
        if i not in used and not any(fnmatch.fnmatch(s, pattern) for s in sources):
            errors.append(f"row '{pattern}': no such source")
        if not tests:
            errors.append(f"row '{pattern}': names no test file")
        for test in tests:
            if not (root / test).exists():
                errors.append(f"row '{pattern}': {test} does not exist")
    return errors


# TEST_CASE( and its name: one string literal, or adjacent ones that clang-format split across
# lines ("a long " "name"), which the compiler joins.
TEST_NAME = re.compile(r'TEST_CASE\(\s*((?:"(?:[^"\\\n]|\\.)*"\s*)+)')


def unrunnable_names(root):
    errors = []
    for path in sorted((root / "tests").rglob("*.cpp")):
        text = path.read_text()
        for match in TEST_NAME.finditer(text):
            name = "".join(re.findall(r'"((?:[^"\\\n]|\\.)*)"', match.group(1)))
            if ";" in name:
                number = text.count("\n", 0, match.start()) + 1
                errors.append(f"{path.relative_to(root)}:{number}: the test name '{name}' "
                              "has a ';', which ctest's discovery splits: the test would never run")
    return errors


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--source-dir", default=".")
    args = parser.parse_args()
    root = pathlib.Path(args.source_dir)
    errors = check(root) + unrunnable_names(root)
    for error in errors:
        print(error, file=sys.stderr)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
