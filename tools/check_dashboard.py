#!/usr/bin/env python3
"""Every ssegw_* series the Grafana dashboard queries is one docs/operations.md documents.

A renamed or removed metric otherwise leaves a panel that silently shows nothing.
"""
import argparse
import json
import pathlib
import re
import sys

SUFFIXES = ("_bucket", "_sum", "_count")


def queried_metrics(dashboard):
    names = set()
    for panel in dashboard.get("panels", []):
        for target in panel.get("targets", []):
            for name in re.findall(r"\bssegw_[a-z0-9_]+", target.get("expr", "")):
                for suffix in SUFFIXES:
                    if name.endswith(suffix):
                        name = name[: -len(suffix)]
                        break
                names.add((panel.get("title", "?"), name))
    return names


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--source-dir", required=True)
    root = pathlib.Path(parser.parse_args().source_dir)
    dashboard = json.loads((root / "docker/grafana/dashboards/ssegw.json").read_text())
    documented = set(re.findall(r"`(ssegw_[a-z0-9_]+)[{`]", (root / "docs/operations.md").read_text()))
    missing = sorted((t, n) for t, n in queried_metrics(dashboard) if n not in documented)
    for title, name in missing:
        print(f"dashboard panel '{title}' queries {name}, which docs/operations.md does not list")
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main())
