#!/usr/bin/env python3
"""Checks every #include of the layered folders against docs/architecture.md ("## Layers").

The ctest test "layers: every include follows docs/architecture.md". A file belongs to the row
whose folder is the longest prefix of its path. Each include line must be one of:
  - a header of its own layer or of a layer it may use, by its path from the repository root;
  - a header of a third-party library its row lists (<uv.h>, <prometheus/...>, ...);
  - any other system header (<string>, <sys/socket.h>, ...).
Fails, naming file:line, on an include in the wrong direction, a `..` (or `./`) path, a quoted
header of a folder no layer owns ("x.hpp" beside the file, "tests/..."), a header of ours that
does not exist, and a library the row does not list. The build's include roots (cmake/layers.cmake)
already stop a wrong-way include from compiling; this sees every line of every file, including
headers that no target compiles and the quoted `..` paths that the compiler resolves beside the
including file.

  tools/check_layers.py [--source-dir DIR]
  tools/check_layers.py --self-test     (the check finds the violations it should)
"""

import argparse
import os
import re
import shutil
import sys
import tempfile

# The table's library names (cmake/layers.cmake maps the same names to CMake targets) and the
# header paths they own.
LIBRARY_HEADERS = {
    "threads": (),
    "yaml-cpp": ("yaml-cpp/",),
    "openssl": ("openssl/",),
    "prometheus": ("prometheus/",),
    "libuv": ("uv.h", "uv/"),
    "llhttp": ("llhttp.h",),
    "hiredis": ("hiredis/",),
    "nghttp2": ("nghttp2/",),
    "liburing": ("liburing.h", "liburing/"),
}
SOURCE_EXTENSIONS = (".cpp", ".hpp", ".h", ".c", ".cc", ".inc")
INCLUDE_RE = re.compile(r'^\s*#\s*include\s*([<"])([^>"]*)[>"]')


class Layer:
    def __init__(self, name, folder, kind, target, uses, temporary, libraries):
        self.name, self.folder, self.kind, self.target = name, folder, kind, target
        self.uses, self.temporary, self.libraries = uses, temporary, libraries


def cell_words(cell):
    return re.sub(r"[`*,]", " ", cell).split()


def read_layers(doc):
    """The rows of the "## Layers" table, bottom first; raises ValueError on a malformed table."""
    layers = []
    in_section = in_table = False
    with open(doc, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            line = line.rstrip("\n")
            if line.startswith("## "):
                in_section = line.strip() == "## Layers"
                continue
            if not in_section:
                continue
            if not line.lstrip().startswith("|"):
                if layers or in_table:
                    break  # the section's first table only
                continue
            in_table = True
            cells = line.strip().strip("|").split("|")
            if len(cells) != 5:
                raise ValueError(f"{doc}:{number}: a row of the layers table needs 5 cells")
            name = cells[0].strip()
            if name == "Layer" or re.fullmatch(r"-+", name):
                continue
            folder = cell_words(cells[1])
            built = cell_words(cells[2])
            if len(folder) != 1 or len(built) != 2 or built[0] not in ("library", "binary"):
                raise ValueError(f"{doc}:{number}: layer {name}: expected `folder` and "
                                 "library|binary NAME")
            known = {layer.name for layer in layers}
            uses, temporary, now = [], [], None
            now = uses
            for word in cell_words(cells[3]):
                if word == "temporary:":
                    now = temporary
                    continue
                if word not in known:
                    raise ValueError(f"{doc}:{number}: layer {name} may use {word}, which is not "
                                     "a row above it")
                now.append(word)
            libraries = cell_words(cells[4])
            for library in libraries:
                if library not in LIBRARY_HEADERS:
                    raise ValueError(f"{doc}:{number}: layer {name}: unknown library {library}")
            layers.append(Layer(name, folder[0], built[0], built[1], uses, temporary, libraries))
    if not layers:
        raise ValueError(f"{doc}: no \"## Layers\" table")
    return layers


def owner(path, layers):
    """The layer owning a path from the repository root, or None."""
    best = None
    for layer in layers:
        if path.startswith(layer.folder + "/") and (best is None or
                                                    len(layer.folder) > len(best.folder)):
            best = layer
    return best


def library_of(header):
    for library, prefixes in LIBRARY_HEADERS.items():
        if any(header == p or (p.endswith("/") and header.startswith(p)) for p in prefixes):
            return library
    return None


def check(source_dir, out=sys.stdout):
    """Prints each violation as file:line: message; returns (violations, files, includes)."""
    layers = read_layers(os.path.join(source_dir, "docs", "architecture.md"))
    by_name = {layer.name: layer for layer in layers}
    top_folders = {layer.folder.split("/")[0] for layer in layers}
    files = []
    for layer in layers:
        for root, dirs, names in os.walk(os.path.join(source_dir, layer.folder)):
            dirs.sort()
            for name in sorted(names):
                if name.endswith(SOURCE_EXTENSIONS):
                    path = os.path.relpath(os.path.join(root, name), source_dir)
                    if owner(path, layers) is layer:
                        files.append((path, layer))
    violations = 0
    includes = 0
    temporary_seen = {}

    def report(where, message):
        nonlocal violations
        violations += 1
        print(f"{where}: {message}", file=out)

    for path, layer in files:
        allowed = {layer.name, *layer.uses}
        with open(os.path.join(source_dir, path), encoding="utf-8", errors="replace") as f:
            for number, line in enumerate(f, 1):
                m = INCLUDE_RE.match(line)
                if not m:
                    continue
                includes += 1
                where = f"{path}:{number}"
                quote, header = m.group(1), m.group(2)
                shown = f"#include {quote}{header}{'>' if quote == '<' else quote}"
                parts = header.split("/")
                if ".." in parts or "." in parts:
                    report(where, f"{shown}: a relative path; include headers "
                                  "by their path from the repository root")
                    continue
                ours = quote == '"' or parts[0] in top_folders
                if not ours:
                    library = library_of(header)
                    if library and library not in layer.libraries:
                        report(where, f"{shown}: layer {layer.name} does not list "
                                      f"{library} under Libraries in docs/architecture.md")
                    continue
                target = owner(header, layers)
                if target is None:
                    report(where, f"{shown}: not a header of any layer (include "
                                  "headers by their path from the repository root)")
                    continue
                if not os.path.isfile(os.path.join(source_dir, header)):
                    report(where, f"{shown}: no such file")
                    continue
                if target.name in allowed:
                    continue
                if target.name in layer.temporary:
                    temporary_seen.setdefault(layer.name, set()).add(target.name)
                    continue
                may = " ".join(layer.uses) or "nothing of ours"
                report(where, f"{shown}: layer {layer.name} ({layer.folder}/) may "
                              f"not use layer {target.name} ({target.folder}/); it may use: {may}")
    for name, used in sorted(temporary_seen.items()):
        print(f"note: layer {name} still uses {' '.join(sorted(used))} under its temporary "
              "exception (docs/architecture.md)", file=out)
    for name in sorted(set(by_name) - set(temporary_seen)):
        if by_name[name].temporary:
            print(f"note: layer {name} no longer uses its temporary "
                  f"{' '.join(by_name[name].temporary)}: delete them from docs/architecture.md",
                  file=out)
    return violations, len(files), includes


def self_test():
    """A copy of the table over a small tree with one violation of each kind."""
    here = os.path.dirname(os.path.abspath(__file__))
    tmp = tempfile.mkdtemp(prefix="check_layers.")
    try:
        os.makedirs(os.path.join(tmp, "docs"))
        shutil.copy(os.path.join(here, "..", "docs", "architecture.md"),
                    os.path.join(tmp, "docs", "architecture.md"))
        tree = {
            "gateway/base/a.hpp": "#include <string>\n",
            "gateway/net/loop.hpp": '#include <uv.h>\n#include "gateway/base/a.hpp"\n',
            "gateway/server/worker.hpp": '#include "gateway/net/loop.hpp"\n',
            "gateway/net/bad.cpp": ('#include "gateway/net/loop.hpp"\n'        # ok
                                    '#include "gateway/server/worker.hpp"\n'   # 2: wrong way
                                    '#include "../server/worker.hpp"\n'        # 3: relative
                                    '#include "loop.hpp"\n'                    # 4: unowned
                                    '#include "tests/x.hpp"\n'                 # 5: unowned
                                    '#include <prometheus/counter.h>\n'        # 6: library
                                    '#include "gateway/net/gone.hpp"\n'        # 7: no file
                                    '  #  include <gateway/server/worker.hpp>\n'),  # 8: wrong way
            "gateway/main.cpp": '#include "gateway/server/worker.hpp"\n',
            "mock/m.cpp": '#include "gateway/net/loop.hpp"\n#include <llhttp.h>\n',
        }
        for path, text in tree.items():
            os.makedirs(os.path.dirname(os.path.join(tmp, path)), exist_ok=True)
            with open(os.path.join(tmp, path), "w", encoding="utf-8") as f:
                f.write(text)

        class Lines:
            def __init__(self):
                self.lines = []

            def write(self, s):
                self.lines.extend(l for l in s.split("\n") if l)

        out = Lines()
        violations, _, _ = check(tmp, out)
        got = sorted(l.split(": ")[0] for l in out.lines if not l.startswith("note:"))
        want = sorted([f"gateway/net/bad.cpp:{n}" for n in (2, 3, 4, 5, 6, 7, 8)] +
                      ["mock/m.cpp:1"])  # the mock may use no layer of the gateway
        ok = got == want and violations == len(want)
        print("\n".join(out.lines))
        print(f"self-test: {'ok' if ok else 'FAILED'} (violations at {got}, expected {want})")
        return 0 if ok else 1
    finally:
        shutil.rmtree(tmp)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--source-dir", default=os.path.join(os.path.dirname(__file__), ".."))
    parser.add_argument("--self-test", action="store_true")
    args = parser.parse_args()
    if args.self_test:
        return self_test()
    try:
        violations, files, includes = check(os.path.abspath(args.source_dir))
    except ValueError as e:
        print(f"error: {e}")
        return 1
    if violations:
        print(f"{violations} include(s) break docs/architecture.md's layers")
        return 1
    print(f"{files} files, {includes} includes: every one follows docs/architecture.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
