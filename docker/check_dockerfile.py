#!/usr/bin/env python3
"""Checks docker/ against what CI builds and runs, on a machine with no Docker engine.

No image is built here. Instead, each step of docker/Dockerfile and docker/compose.yaml is
checked against the real thing it stands for:

  (a) the build stage runs tools/bootstrap.sh (minimal) and the Makefile's `build` target, the
      one that CI's `make test` runs (compared with `make -n build`, not with a copy);
  (b) the runtime stage copies exactly the deployable binaries of build/bin, and every COPY
      source exists in the repository or the build stage;
  (c) every runtime package exists in Debian and, with its dependencies, provides every shared
      library that ldd reports for those binaries (dpkg -S);
  (e) the CMD's arguments are accepted by the real binary (started on 127.0.0.1:0 instead of
      0.0.0.0:8080), the HEALTHCHECK command passes against it, SIGTERM stops it with status 0;
  and compose.yaml validates against the compose-spec JSON schema (npm package dclint ships the
  schema; Ajv validates) and its wiring holds: the gateway config it mounts passes
  --check-config, the gateway in front of the mock streams a chat answer (both on loopback),
  Prometheus scrapes the gateway's service and port (promtool check config when installed), and
  the Grafana dashboard queries only metrics that the gateway exports.

(d), the probe itself, is tested in tests/integration/probe_test.cpp.

Usage: check_dockerfile.py --source-dir DIR --bin-dir DIR [--node-modules DIR ...]
Everything runs on loopback and every child process has a timeout. Prints one line per check
and ends with "N passed, N failed"; exits 1 when a check failed.
"""

import argparse
import fnmatch
import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request

TIMEOUT = 20  # seconds, for any one child process

# Files of build/bin that stay out of the image on purpose.
NOT_SHIPPED = {
    "ssegw-bench": "the load generator (bench/), a tool for benchmarks, not a server",
    "ssegw-floor": "the kernel's price of a fan-out's writes (bench/), a benchmark, not a server",
}
NOT_SHIPPED_PATTERNS = ["*_tests", "*_test", "*fuzz*"]  # test programs

SANITIZER_RUNTIMES = ("libasan.so", "libubsan.so", "liblsan.so", "libtsan.so")


class Report:
    def __init__(self):
        self.passed = 0
        self.failed = 0

    def ok(self, what):
        self.passed += 1
        print(f"ok    {what}")

    def fail(self, what, detail=""):
        self.failed += 1
        print(f"FAIL  {what}")
        for line in str(detail).rstrip().splitlines():
            print(f"        {line}")

    def check(self, cond, what, detail=""):
        if cond:
            self.ok(what)
        else:
            self.fail(what, detail)
        return cond

    def note(self, text):
        print(f"      {text}")


R = Report()


def run(argv, timeout=TIMEOUT, env=None, cwd=None):
    """Runs argv; returns (status, stdout+stderr). A timeout is status -1."""
    try:
        p = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                           timeout=timeout, env=env, cwd=cwd)
        return p.returncode, p.stdout
    except subprocess.TimeoutExpired as e:
        out = e.stdout.decode() if isinstance(e.stdout, bytes) else (e.stdout or "")
        return -1, out + f"\n(timed out after {timeout}s)"
    except OSError as e:
        return -1, str(e)


# ------------------------------------------------------------------------------------------
# Dockerfile parsing


class Instr:
    def __init__(self, line, cmd, args):
        self.line = line
        self.cmd = cmd
        self.args = args

    def flags_and_rest(self):
        """Splits leading --flag=value options (COPY --from=..., HEALTHCHECK --interval=...)."""
        words = self.args.split()
        flags = {}
        while words and words[0].startswith("--"):
            k, _, v = words.pop(0)[2:].partition("=")
            flags[k] = v
        return flags, " ".join(words)

    def exec_form(self, text=None):
        """The JSON array of an exec-form instruction, or None for the shell form."""
        text = self.args if text is None else text
        text = text.strip()
        if not text.startswith("["):
            return None
        try:
            v = json.loads(text)
        except ValueError:
            return None
        return v if isinstance(v, list) and all(isinstance(x, str) for x in v) else None


class Stage:
    def __init__(self, index, image, name):
        self.index = index
        self.image = image
        self.name = name
        self.instrs = []

    def all(self, cmd):
        return [i for i in self.instrs if i.cmd == cmd]


def parse_dockerfile(path):
    lines = open(path, encoding="utf-8").read().split("\n")
    instrs = []
    buf, start = "", 0
    for n, raw in enumerate(lines, 1):
        stripped = raw.strip()
        if not buf and (not stripped or stripped.startswith("#")):
            continue
        if buf and stripped.startswith("#"):
            continue  # comment lines inside a continuation are dropped
        if not buf:
            start = n
        if raw.rstrip().endswith("\\"):
            buf += raw.rstrip()[:-1] + " "
            continue
        buf += raw
        word, _, rest = buf.strip().partition(" ")
        instrs.append(Instr(start, word.upper(), rest.strip()))
        buf = ""
    stages = []
    for i in instrs:
        if i.cmd == "FROM":
            m = re.match(r"^(?:--\S+\s+)*(\S+)(?:\s+AS\s+(\S+))?$", i.args, re.I)
            stages.append(Stage(len(stages), m.group(1) if m else i.args,
                                m.group(2) if m and m.group(2) else None))
        elif stages:
            stages[-1].instrs.append(i)
    return stages


def shell_commands(run_text):
    """Splits a RUN shell line into simple commands (&&, ||, ;), each a list of words."""
    lexer = shlex.shlex(run_text, posix=True, punctuation_chars=";&|")
    lexer.whitespace_split = True
    cmds, cur = [], []
    for tok in lexer:
        if tok in ("&&", "||", ";", "|", "&"):
            if cur:
                cmds.append(cur)
            cur = []
        else:
            cur.append(tok)
    if cur:
        cmds.append(cur)
    return cmds


def split_assignments(words):
    """Leading NAME=VALUE words of a simple command, then the rest."""
    env = {}
    i = 0
    while i < len(words) and re.match(r"^[A-Za-z_][A-Za-z0-9_]*=", words[i]):
        k, _, v = words[i].partition("=")
        env[k] = v
        i += 1
    return env, words[i:]


def stage_env_before(stage, instr):
    env = {}
    for i in stage.instrs:
        if i is instr:
            break
        if i.cmd == "ENV":
            for m in re.finditer(r'([A-Za-z_][A-Za-z0-9_]*)=("([^"]*)"|\S+)', i.args):
                env[m.group(1)] = m.group(3) if m.group(3) is not None else m.group(2)
            if "=" not in i.args:  # legacy "ENV NAME value"
                k, _, v = i.args.partition(" ")
                env[k] = v.strip()
    return env


# ------------------------------------------------------------------------------------------
# Makefile


def make_dry_run(src, target, overrides=()):
    status, out = run(["make", "--no-print-directory", "-n", "-C", src, target, *overrides])
    if status != 0:
        raise RuntimeError(f"make -n {target} failed:\n{out}")
    return [l.strip() for l in out.splitlines() if l.strip()]


def makefile_prereqs(src, target):
    text = open(os.path.join(src, "Makefile"), encoding="utf-8").read()
    m = re.search(rf"^{re.escape(target)}\s*:(?!=)([^\n]*)$", text, re.M)
    return m.group(1).split() if m else None


def makefile_default(src, var):
    text = open(os.path.join(src, "Makefile"), encoding="utf-8").read()
    m = re.search(rf"^{var}\s*\?=\s*(\S+)", text, re.M)
    return m.group(1) if m else None


def normalize_jobs(cmd):
    return re.sub(r"-j\s*\S+", "-jN", " ".join(cmd.split()))


# ------------------------------------------------------------------------------------------
# .dockerignore


def ignore_patterns(path):
    if not os.path.exists(path):
        return None
    pats = []
    for line in open(path, encoding="utf-8"):
        line = line.strip()
        if line and not line.startswith("#"):
            pats.append(line)
    return pats


def ignored(rel, patterns):
    """Docker's rules, simplified: a path is excluded when it or a parent folder matches."""
    parts = rel.strip("/").split("/")
    hit = False
    for pat in patterns:
        neg = pat.startswith("!")
        p = pat[1:] if neg else pat
        p = p.strip("/")
        for k in range(1, len(parts) + 1):
            prefix = "/".join(parts[:k])
            if fnmatch.fnmatchcase(prefix, p) or (p.startswith("**/") and
                                                  fnmatch.fnmatchcase(parts[k - 1], p[3:])):
                hit = not neg
                break
    return hit


# ------------------------------------------------------------------------------------------
# Debian packages


def apt_existing(pkgs):
    """The names among pkgs that are real Debian packages (one apt-cache call)."""
    if not pkgs:
        return set()
    status, out = run(["apt-cache", "show", "--no-all-versions", *pkgs], timeout=60)
    return set(re.findall(r"^Package: (\S+)$", out, re.M)) & set(pkgs)


def dependency_graph(roots):
    """Package -> list of dependency groups (Depends, Pre-Depends), each a list of alternatives,
    for roots and everything they pull in (one `apt-cache depends --recurse` call). A virtual
    package stands for its first provider."""
    status, out = run(["apt-cache", "depends", "--recurse", "--no-recommends", "--no-suggests",
                       "--no-conflicts", "--no-breaks", "--no-replaces", "--no-enhances", *roots],
                      timeout=60)
    graph, pkg, group, pending_virtual = {}, None, [], None
    for line in out.splitlines():
        if not line.startswith(" "):
            pkg = line.strip()
            graph.setdefault(pkg, [])
            group, pending_virtual = [], None
            continue
        m = re.match(r"^ (\||\s)(?:Pre)?Depends: (\S+)$", line)
        if m and pkg is not None:
            name = m.group(2)
            pending_virtual = None
            if name.startswith("<"):
                pending_virtual = group  # its providers follow, indented by four
            else:
                group.append(name)
            if m.group(1) != "|":
                if pending_virtual is None:
                    graph[pkg].append(group)
                    group = []
        elif line.startswith("    ") and pending_virtual is not None:
            pending_virtual.append(line.strip())
            # The group is complete once a virtual's providers are listed and no | preceded it.
            if pending_virtual not in graph[pkg]:
                graph[pkg].append(pending_virtual)
            group = []
    return graph


def dependency_closure(graph, roots):
    """What apt installs with roots: first alternative of each group. Returns (set, why) where
    why[p] names the package that pulled p in."""
    seen, pending, why = set(), list(roots), {r: None for r in roots}
    while pending:
        pkg = pending.pop(0)  # breadth first: `why` names the nearest parent
        if pkg in seen:
            continue
        seen.add(pkg)
        for group in graph.get(pkg, []):
            choice = next((g for g in group if g in graph), group[0] if group else None)
            if choice and choice not in why:
                why[choice] = pkg
            if choice:
                pending.append(choice)
    return seen, why


def essential_packages():
    status, out = run(["dpkg-query", "-W", "-f", "${Package} ${Essential}\n"])
    return {l.split()[0] for l in out.splitlines() if l.endswith(" yes")}


def path_variants(path):
    """dpkg records a library under /lib or /usr/lib (merged /usr): both, and the real file."""
    out = []
    for c in (path, os.path.realpath(path)):
        out += [c, c[4:] if c.startswith("/usr/") else "/usr" + c]
    return list(dict.fromkeys(out))


def owner_packages(paths):
    """path -> owning package, for every path that one `dpkg -S` call resolves."""
    variants = {v: p for p in paths for v in path_variants(p)}
    status, out = run(["dpkg", "-S", *variants], timeout=60)
    owners = {}
    for line in out.splitlines():
        m = re.match(r"^([^\s:,]+)(?::\S+)?(?:, [^:]+)*: (/\S+)$", line)
        if m and m.group(2) in variants:
            owners.setdefault(variants[m.group(2)], m.group(1))
    return owners


def ldd(binary):
    status, out = run(["ldd", binary])
    libs = []  # (soname, path or None)
    for line in out.splitlines():
        line = line.strip()
        m = re.match(r"^(\S+) => (\S+|not found)", line)
        if m:
            libs.append((m.group(1), None if m.group(2) == "not found" else m.group(2)))
        elif line.startswith("/"):
            libs.append((os.path.basename(line.split()[0]), line.split()[0]))
    return status, libs


# ------------------------------------------------------------------------------------------
# Processes on loopback


class Listening:
    """A child whose first stderr line is ssegw's JSON "listening" line."""

    def __init__(self, argv, env=None, timeout=10):
        self.argv = argv
        self.proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                     text=True, env=env)
        self.port = None
        self.first_line = ""
        import select
        deadline = time.monotonic() + timeout
        line = ""
        while time.monotonic() < deadline and "\n" not in line:
            r, _, _ = select.select([self.proc.stderr], [], [], 0.2)
            if r:
                ch = self.proc.stderr.readline()
                if not ch:
                    break
                line += ch
        self.first_line = line.strip()
        try:
            addr = json.loads(self.first_line).get("addr", "")
            self.port = int(addr.rsplit(":", 1)[1])
        except (ValueError, IndexError, AttributeError):
            self.port = None

    def stop(self, sig=signal.SIGTERM, timeout=10):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            status = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            status = self.proc.wait()
        rest = self.proc.stderr.read()
        return status, rest

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()


def http_get(port, path, timeout=5):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=timeout) as r:
        return r.status, r.read().decode("utf-8", "replace")


def metric_families(text):
    return {m.group(1) for m in re.finditer(r"^# TYPE (\S+) \S+$", text, re.M)}


def node_yaml_to_json(node_modules, path):
    """Parses YAML (merge keys resolved) with the npm `yaml` package; None when unavailable."""
    if not node_modules:
        return None
    script = ("const p=require('path');const fs=require('fs');"
              "const y=require(require.resolve('yaml',{paths:[p.join(process.argv[1],'dclint'),"
              "process.argv[1]]}));"
              "process.stdout.write(JSON.stringify(y.parse(fs.readFileSync(process.argv[2],'utf8'),"
              "{merge:true})));")
    status, out = run(["node", "-e", script, node_modules, path])
    if status != 0:
        raise RuntimeError(out)
    return json.loads(out)


# ------------------------------------------------------------------------------------------


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--source-dir", required=True)
    ap.add_argument("--bin-dir", required=True)
    ap.add_argument("--node-modules", action="append", default=[],
                    help="a node_modules folder holding the npm package dclint (searched in order)")
    a = ap.parse_args()
    src = os.path.abspath(a.source_dir)
    bin_dir = os.path.abspath(a.bin_dir)
    docker = os.path.join(src, "docker")
    dockerfile = os.path.join(docker, "Dockerfile")

    stages = parse_dockerfile(dockerfile)
    final = stages[-1] if stages else None

    # ---- stages ----------------------------------------------------------------------------
    names = {s.name for s in stages if s.name}
    R.check(len(stages) >= 2 and all(s.image in ("debian:bookworm-slim",) or s.image in names
                                     for s in stages),
            "Dockerfile: multi-stage, every stage FROM debian:bookworm-slim (CI's Debian 12)",
            "; ".join(f"FROM {s.image}" for s in stages))
    if not final:
        return
    froms = {i.flags_and_rest()[0].get("from") for i in final.all("COPY")} - {None}
    build = next((s for s in stages if s.name in froms or str(s.index) in froms), None)
    if not R.check(build is not None and len(froms) == 1 and build is not final,
                   "Dockerfile: the runtime stage copies from one build stage",
                   f"COPY --from values: {sorted(froms)}"):
        return
    workdir = "/"
    for i in build.instrs:
        if i.cmd == "WORKDIR":
            workdir = os.path.normpath(os.path.join(workdir, i.args))
    copies_repo = any(i.flags_and_rest()[1].split() in (([".", "."]), ([".", "./"]),
                                                         ([".", workdir]), ([".", workdir + "/"]))
                      for i in build.all("COPY"))
    R.check(copies_repo, f"build stage: COPY . {workdir} (the whole repository, like CI's clone)")

    # ---- (a) bootstrap and the Makefile's build target ---------------------------------------
    runs = build.all("RUN")
    boot_at = build_at = None
    boot_env = {}
    make_cmd = None
    for idx, i in enumerate(runs):
        for words in shell_commands(i.args):
            env, rest = split_assignments(words)
            if not rest:
                continue
            prog = rest[1] if rest[0] in ("bash", "sh") and len(rest) > 1 else rest[0]
            if os.path.normpath(prog) == "tools/bootstrap.sh" and boot_at is None:
                boot_at = idx
                boot_env = {**stage_env_before(build, i), **env}
            if rest[0] == "make":
                targets = [w for w in rest[1:] if not w.startswith("-") and "=" not in w]
                if "build" in targets and build_at is None:
                    build_at = idx
                    make_cmd = (i, {**stage_env_before(build, i), **env}, rest)
    R.check(boot_at is not None, "(a) build stage: a RUN runs tools/bootstrap.sh")
    R.check(boot_env.get("SSEGW_BOOTSTRAP_MINIMAL") == "1",
            "(a) build stage: ... with SSEGW_BOOTSTRAP_MINIMAL=1 (no prometheus, no chromium)")
    boot_text = open(os.path.join(src, "tools", "bootstrap.sh"), encoding="utf-8").read()
    R.check("SSEGW_BOOTSTRAP_MINIMAL" in boot_text,
            "(a) tools/bootstrap.sh honours SSEGW_BOOTSTRAP_MINIMAL")

    ci = open(os.path.join(src, ".ci", "run"), encoding="utf-8").read()
    ci_targets = [t for words in (shell_commands(l) for l in ci.splitlines()
                                  if l.strip() and not l.lstrip().startswith("#"))
                  for w in words if w and w[0] == "make" for t in w[1:] if not t.startswith("-")]
    test_prereqs = makefile_prereqs(src, "test") or []
    R.check("build" in ci_targets or ("test" in ci_targets and "build" in test_prereqs),
            "(a) CI builds through the Makefile's build target",
            f".ci/run runs make {ci_targets}; test: {test_prereqs}")

    ci_build = make_dry_run(src, "build")
    build_dir = makefile_default(src, "BUILD_DIR") or "build"
    if make_cmd:
        instr, env, words = make_cmd
        overrides = [w for w in words[1:] if "=" in w]
        bad = [w for w in overrides if w.split("=")[0] != "JOBS"]
        bad += [f"{k}={v} (ENV)" for k, v in env.items()
                if k in ("BUILD_DIR", "CMAKE_FLAGS", "MAKEFLAGS")]
        img_build = make_dry_run(src, "build", [w for w in overrides if not w.startswith("JOBS=")])
        R.check(not bad and [normalize_jobs(c) for c in img_build] ==
                [normalize_jobs(c) for c in ci_build],
                f"(a) build stage: `{' '.join(words)}` runs the Makefile's build recipe unchanged",
                "overrides that change the build: " + ", ".join(bad) if bad else
                "image:\n  " + "\n  ".join(img_build) + "\nCI:\n  " + "\n  ".join(ci_build))
    else:
        # The Makefile's build commands written out: each must appear, in order.
        run_lines = [(idx, normalize_jobs(" ".join(w)))
                     for idx, i in enumerate(runs) for w in shell_commands(i.args)]
        want = [normalize_jobs(" ".join(shlex.split(c))) for c in ci_build
                if "bootstrap.sh" not in c]
        pos, missing = 0, []
        for w in want:
            hit = next((k for k in range(pos, len(run_lines)) if run_lines[k][1] == w), None)
            if hit is None:
                missing.append(w)
            else:
                pos = hit + 1
                build_at = run_lines[hit][0] if build_at is None else build_at
        R.check(not missing, "(a) build stage: the Makefile's build commands (make -n build)",
                "missing: " + "; ".join(missing))
    R.note("CI's build recipe (make -n build): " + " | ".join(ci_build))
    R.check(boot_at is not None and build_at is not None and boot_at <= build_at,
            "(a) build stage: bootstrap (which installs make and the compilers) comes first")

    ign = ignore_patterns(dockerfile + ".dockerignore") or ignore_patterns(
        os.path.join(src, ".dockerignore"))
    asan_dir = makefile_default(src, "ASAN_DIR") or "build-asan"
    R.check(ign is not None and all(ignored(p, ign) for p in
                                    (build_dir, asan_dir, "tests/node/node_modules", ".git")),
            f"Dockerfile.dockerignore keeps {build_dir}/, {asan_dir}/, node_modules and .git "
            "out of the context (a stale CMakeCache.txt would break the build)",
            f"patterns: {ign}")

    # ---- (b) the runtime stage's files ------------------------------------------------------
    R.check(not final.all("ADD"), "(b) runtime stage: no ADD")
    image_bin = f"{workdir}/{build_dir}/bin/"
    dest_to_host = {}  # container path -> host path
    copied_bins = set()
    problems = []
    for i in final.all("COPY"):
        flags, rest = i.flags_and_rest()
        parts = i.exec_form(rest) or rest.split()
        sources, dest = parts[:-1], parts[-1]
        for s in sources:
            if "from" in flags:
                if s.startswith(image_bin):
                    name = s[len(image_bin):]
                    host = os.path.join(bin_dir, name)
                    copied_bins.add(name)
                    if not (os.path.isfile(host) and os.access(host, os.X_OK)):
                        problems.append(f"line {i.line}: {s}: no executable {host} after the build")
                elif s.startswith(workdir + "/"):
                    rel = s[len(workdir) + 1:]
                    host = os.path.join(src, rel)
                    if not os.path.exists(host) or (ign and ignored(rel, ign)):
                        problems.append(f"line {i.line}: {s}: not in the repository's context")
                else:
                    host = None
                    problems.append(f"line {i.line}: {s}: outside {workdir}, the build stage's tree")
            else:
                host = os.path.join(src, s)
                if not os.path.exists(host) or (ign and ignored(s, ign)):
                    problems.append(f"line {i.line}: {s}: not in the repository's context")
            target = os.path.join(dest, os.path.basename(s)) if dest.endswith("/") else dest
            if host:
                dest_to_host[target] = host
    R.check(not problems, "(b) every COPY source exists in the repository or the build stage",
            "\n".join(problems))
    in_bin = {f for f in os.listdir(bin_dir)
              if os.path.isfile(os.path.join(bin_dir, f)) and os.access(os.path.join(bin_dir, f),
                                                                        os.X_OK)}
    tests = {f for f in in_bin if any(fnmatch.fnmatchcase(f, p) for p in NOT_SHIPPED_PATTERNS)}
    deployable = in_bin - tests - set(NOT_SHIPPED)
    R.check(copied_bins == deployable,
            f"(b) runtime stage copies exactly the deployable binaries of {bin_dir}: "
            f"{sorted(copied_bins)}",
            f"copied {sorted(copied_bins)}, deployable {sorted(deployable)} "
            f"(build/bin has {sorted(in_bin)}; left out: tests {sorted(tests)}, "
            f"{NOT_SHIPPED})")
    config_dests = [d for d, h in dest_to_host.items() if h == os.path.join(src, "config",
                                                                             "gateway.yaml")]
    R.check(bool(config_dests), "(b) runtime stage holds config/gateway.yaml",
            f"destinations: {dest_to_host}")

    # ---- (c) runtime packages and shared libraries --------------------------------------------
    pkgs = []
    for i in final.all("RUN"):
        for words in shell_commands(i.args):
            _, rest = split_assignments(words)
            if rest[:2] in (["apt-get", "install"], ["apt", "install"]):
                pkgs += [w for w in rest[2:] if not w.startswith("-")]
    missing = sorted(set(pkgs) - apt_existing(pkgs))
    R.check(pkgs and not missing,
            f"(c) runtime packages exist in Debian (apt-cache show): {' '.join(pkgs)}",
            f"not found: {missing} (run apt-get update first if the lists are empty)")
    dev = [p for p in pkgs if p.endswith("-dev")]
    R.check(not dev, "(c) runtime stage installs no -dev package", f"{dev}")
    essential = essential_packages()
    graph = dependency_graph(sorted(set(pkgs) | essential))
    closure, why = dependency_closure(graph, pkgs)
    base, _ = dependency_closure(graph, sorted(essential))
    uncovered = []
    used = set()
    needed = {}
    for name in sorted(copied_bins):
        status, libs = ldd(os.path.join(bin_dir, name))
        if status != 0 or not libs:
            uncovered.append(f"{name}: ldd failed")
        needed[name] = libs
    owners = owner_packages({path for libs in needed.values() for _, path in libs if path})
    for name, libs in needed.items():
        for soname, path in libs:
            if soname.startswith("linux-vdso") or soname.startswith("linux-gate"):
                continue
            if soname.startswith(SANITIZER_RUNTIMES):
                R.note(f"{name}: {soname} skipped (sanitizer runtime of this test build; the "
                       "image builds Release without sanitizers)")
                continue
            if not path:
                uncovered.append(f"{name}: {soname} not found")
                continue
            owner = owners.get(path)
            if owner in closure:
                used.add(owner)
                via = "listed" if owner in pkgs else f"dependency of {why.get(owner)}"
                R.note(f"{name}: {soname} -> {owner} ({via})")
            elif owner in base:
                R.note(f"{name}: {soname} -> {owner} (in every Debian image: essential)")
            else:
                uncovered.append(f"{name}: {soname} ({path}) belongs to {owner or 'no package'}, "
                                 "which the runtime stage does not install")
    R.check(not uncovered,
            "(c) the runtime packages provide every shared library of the copied binaries (ldd, "
            "dpkg -S)", "\n".join(uncovered))
    unused = [p for p in pkgs if p not in used and p != "ca-certificates"]
    R.check(not unused, "(c) every runtime library package is needed by a binary",
            f"not needed: {unused}")
    R.check("ca-certificates" in pkgs,
            "(c) runtime stage has ca-certificates (https upstreams verify against the system store)")

    # ---- image metadata ----------------------------------------------------------------------
    users = final.all("USER")
    user = users[-1].args.split(":")[0] if users else "root"
    R.check(user not in ("root", "0"), f"runtime stage: runs as a non-root user ({user})")
    if user.isdigit():
        R.check(any(re.search(rf"useradd\b.*--uid\s+{user}\b", i.args) for i in final.all("RUN")),
                f"runtime stage: uid {user} is created with useradd")
    exposed = {p.split("/")[0] for i in final.all("EXPOSE") for p in i.args.split()}
    R.check("8080" in exposed, "runtime stage: EXPOSE 8080", f"{exposed}")
    stops = final.all("STOPSIGNAL")
    R.check(stops and stops[-1].args in ("SIGTERM", "TERM", "15"), "runtime stage: STOPSIGNAL SIGTERM")
    cmd = final.all("CMD")[-1].exec_form() if final.all("CMD") else None
    R.check(cmd is not None and not final.all("ENTRYPOINT"), "runtime stage: CMD in exec form, "
            "no ENTRYPOINT (compose runs the mock from the same image with its own command)")
    hc = None
    if final.all("HEALTHCHECK"):
        _, hc_rest = final.all("HEALTHCHECK")[-1].flags_and_rest()
        if hc_rest.startswith("CMD"):
            hc = final.all("HEALTHCHECK")[-1].exec_form(hc_rest[3:])
    R.check(hc is not None and len(hc) == 3 and hc[1] == "--probe",
            "runtime stage: HEALTHCHECK CMD [ssegw, --probe, URL] in exec form (no shell, no curl)",
            f"{hc}")
    if not cmd or not hc:
        return
    ssegw_path = next((d for d, h in dest_to_host.items() if h == os.path.join(bin_dir, "ssegw")),
                      None)
    R.check(cmd[0] == ssegw_path and hc[0] == ssegw_path,
            f"CMD and HEALTHCHECK run the copied ssegw ({ssegw_path})", f"{cmd[0]}, {hc[0]}")
    listen = cmd[cmd.index("--listen") + 1] if "--listen" in cmd[:-1] else None
    R.check(listen == "0.0.0.0:8080", "CMD listens on 0.0.0.0:8080", f"--listen {listen}")
    hc_url = re.match(r"^http://127\.0\.0\.1:(\d+)(/.*)$", hc[2])
    R.check(hc_url is not None and hc_url.group(1) == "8080" and hc_url.group(2) == "/healthz",
            "HEALTHCHECK probes http://127.0.0.1:8080/healthz, the CMD's port", hc[2])

    # ---- (e) the CMD against the real binary ---------------------------------------------------
    def to_host(argv, mounts=None, listen_to="127.0.0.1:0"):
        """Container paths to the host files they come from; --listen to loopback, port 0."""
        paths = {**dest_to_host, **(mounts or {})}
        out = []
        for k, arg in enumerate(argv):
            if k > 0 and argv[k - 1] == "--listen":
                out.append(listen_to)
            else:
                out.append(paths.get(arg, arg))
        return out

    host_cmd = to_host(cmd)
    cfg = host_cmd[host_cmd.index("--config") + 1] if "--config" in host_cmd else None
    if cfg:
        status, out = run([host_cmd[0], "--check-config", cfg])
        R.check(status == 0, f"(e) ssegw --check-config accepts the image's config ({cfg})", out)
    gw = Listening(host_cmd)
    families = set()
    try:
        if R.check(gw.port is not None, "(e) the CMD's arguments start the real ssegw "
                   "(--listen 127.0.0.1:0 instead of 0.0.0.0:8080): " + " ".join(host_cmd[1:]),
                   gw.first_line):
            hc_host = [os.path.join(bin_dir, "ssegw"), hc[1], hc[2].replace(":8080/",
                                                                           f":{gw.port}/")]
            status, out = run(hc_host, timeout=10)
            R.check(status == 0, "(e)(d) the HEALTHCHECK command passes against it", out)
    finally:
        if gw.port is not None:
            status, rest = gw.stop(signal.SIGTERM)
            R.check(status == 0, "(e) STOPSIGNAL (SIGTERM) drains and exits with status 0",
                    f"status {status}\n{rest[-2000:]}")
        else:
            gw.kill()

    # ---- compose.yaml ------------------------------------------------------------------------
    compose_path = os.path.join(docker, "compose.yaml")
    nm = next((d for d in a.node_modules
               if os.path.isfile(os.path.join(d, "dclint", "schemas", "compose.schema.json"))),
              None)
    if not R.check(nm is not None, "compose: the npm package dclint (compose-spec JSON schema) and "
                   "Ajv are installed", f"looked in {a.node_modules}; run `make node-deps`"):
        return
    validator = r"""
const [nm, file] = process.argv.slice(1);
const path = require('path'), fs = require('fs');
const pkg = path.join(nm, 'dclint');
const req = (m) => require(require.resolve(m, { paths: [pkg, nm] }));
const Ajv = req('ajv'), YAML = req('yaml');
const schema = JSON.parse(fs.readFileSync(path.join(pkg, 'schemas/compose.schema.json'), 'utf8'));
// "$schema": "https://json-schema.org/draft-07/schema", which is Ajv 8's default draft.
delete schema['$schema'];
const ajv = new (Ajv.default || Ajv)({ allErrors: true, strict: false, allowUnionTypes: true,
                                       validateFormats: false });
const validate = ajv.compile(schema);
const doc = YAML.parse(fs.readFileSync(file, 'utf8'), { merge: true });
if (!validate(doc)) { console.log(JSON.stringify(validate.errors, null, 1)); process.exit(1); }
console.log(`${schema.title} (${Object.keys(schema.definitions).length} definitions)`);
"""
    status, out = run(["node", "-e", validator, nm, compose_path])
    R.check(status == 0, "compose: compose.yaml validates against the compose-spec JSON schema "
            f"(Ajv, {out.strip() if status == 0 else 'errors below'})", out)
    compose = node_yaml_to_json(nm, compose_path)
    services = compose.get("services", {})
    R.check({"ssegw", "mock-llm", "prometheus", "grafana"} <= set(services),
            "compose: services ssegw, mock-llm, prometheus, grafana", f"{sorted(services)}")
    R.check(services.get("grafana", {}).get("profiles") == ["grafana"] and
            all("profiles" not in s for n, s in services.items() if n != "grafana"),
            "compose: Grafana is optional (profiles: [grafana]), the rest always runs")
    for name in ("ssegw", "mock-llm"):
        b = services.get(name, {}).get("build", {})
        ctx = os.path.normpath(os.path.join(docker, b.get("context", ".")))
        R.check(ctx == src and os.path.normpath(os.path.join(ctx, b.get("dockerfile", ""))) ==
                dockerfile, f"compose: {name} builds this Dockerfile from the repository root",
                f"{b}")

    def listen_port(argv):
        if argv and "--listen" in argv[:-1]:
            return argv[argv.index("--listen") + 1].rsplit(":", 1)[1]
        return None

    mock = services.get("mock-llm", {})
    mock_cmd = mock.get("command")
    mock_path = next((d for d, h in dest_to_host.items()
                      if h == os.path.join(bin_dir, "ssegw-mock-llm")), None)
    R.check(isinstance(mock_cmd, list) and mock_cmd[0] == mock_path and
            listen_port(mock_cmd) is not None and mock_cmd[mock_cmd.index("--listen") + 1]
            .startswith("0.0.0.0:"),
            "compose: mock-llm runs the image's ssegw-mock-llm on 0.0.0.0", f"{mock_cmd}")
    gw_svc = services.get("ssegw", {})
    gw_cmd = gw_svc.get("command")
    R.check(isinstance(gw_cmd, list) and gw_cmd[0] == ssegw_path and listen_port(gw_cmd) == "8080",
            "compose: ssegw runs the image's ssegw on port 8080", f"{gw_cmd}")
    R.check(any(str(p).endswith(":8080") for p in gw_svc.get("ports", [])),
            "compose: ssegw publishes its port 8080", f"{gw_svc.get('ports')}")
    R.check(gw_svc.get("depends_on", {}).get("mock-llm", {}).get("condition") == "service_healthy",
            "compose: ssegw waits for a healthy mock-llm")

    def volume_map(svc):
        out = {}
        for v in services.get(svc, {}).get("volumes", []):
            parts = v.split(":") if isinstance(v, str) else [v.get("source"), v.get("target")]
            if len(parts) >= 2 and parts[0].startswith("."):
                out[parts[1]] = os.path.normpath(os.path.join(docker, parts[0]))
        return out

    gw_vols = volume_map("ssegw")
    env = {k: str(v) for k, v in (gw_svc.get("environment") or {}).items()}
    cfg_in = gw_cmd[gw_cmd.index("--config") + 1] if gw_cmd and "--config" in gw_cmd else None
    cfg_host = gw_vols.get(cfg_in) or dest_to_host.get(cfg_in)
    if not R.check(cfg_host and os.path.isfile(cfg_host),
                   f"compose: ssegw's --config {cfg_in} is a mounted repository file",
                   f"volumes {gw_vols}"):
        return
    status, out = run([os.path.join(bin_dir, "ssegw"), "--check-config", cfg_host],
                      env={**os.environ, **env})
    R.check(status == 0, f"compose: {os.path.relpath(cfg_host, src)} passes --check-config with "
            f"the service's environment {env}", out)
    # Every http://SERVICE:PORT in the environment names a service and the port it listens on.
    for k, v in env.items():
        m = re.match(r"^https?://([^:/]+):(\d+)", v)
        if m and m.group(1) in services:
            R.check(listen_port(services[m.group(1)].get("command")) == m.group(2),
                    f"compose: {k}={v} is where {m.group(1)} listens")
    hc_mock = (mock.get("healthcheck") or {}).get("test")
    R.check(isinstance(hc_mock, list) and hc_mock[:3] == ["CMD", ssegw_path, "--probe"],
            "compose: mock-llm's healthcheck is the ssegw probe (the image's HEALTHCHECK would "
            "probe port 8080)", f"{hc_mock}")

    # The sidecar on loopback: the mock, and the gateway with the compose config in front of it.
    mock_proc = Listening([os.path.join(bin_dir, "ssegw-mock-llm"), "--listen", "127.0.0.1:0"])
    gw = None
    try:
        if not R.check(mock_proc.port is not None, "compose: ssegw-mock-llm starts",
                       mock_proc.first_line):
            return
        if hc_mock:
            argv = to_host(hc_mock[1:])
            argv = [re.sub(r"^(http://127\.0\.0\.1):\d+/", rf"\1:{mock_proc.port}/", x)
                    for x in argv]
            status, out = run(argv, timeout=10)
            R.check(status == 0, "compose: mock-llm's healthcheck command passes against it", out)
        local_env = {**os.environ, **{k: re.sub(r"^http://mock-llm:\d+",
                                                f"http://127.0.0.1:{mock_proc.port}", v)
                                      for k, v in env.items()}}
        gw = Listening(to_host(gw_cmd, gw_vols), env=local_env)
        if not R.check(gw.port is not None, "compose: ssegw starts with the compose config "
                       "(mock-llm:9000 mapped to the local mock)", gw.first_line):
            return
        body = json.dumps({"model": "mock", "stream": True,
                           "messages": [{"role": "user", "content": "hello"}]}).encode()
        req = urllib.request.Request(
            f"http://127.0.0.1:{gw.port}/v1/chat/completions?tokens=5&interval_ms=1", data=body,
            headers={"Content-Type": "application/json"}, method="POST")
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                status, text = r.status, r.read().decode("utf-8", "replace")
        except (urllib.error.URLError, OSError) as e:
            status, text = -1, str(e)
        R.check(status == 200 and "data: [DONE]" in text and
                len(re.findall(r'"content":"tok[0-9]+ "', text)) == 5,
                "compose: a streamed chat answer goes through ssegw to the mock and back",
                f"status {status}\n{text[:2000]}")
        for _ in range(2):  # the second scrape also sees the first one's request counter
            status, text = http_get(gw.port, "/metrics")
        families = metric_families(text)
    finally:
        if gw:
            gw.stop()
        mock_proc.stop()

    # ---- Prometheus --------------------------------------------------------------------------
    prom_vols = volume_map("prometheus")
    prom_cfg = next((h for h in prom_vols.values() if h.endswith("prometheus.yml")), None)
    R.check(prom_cfg == os.path.join(docker, "prometheus.yml"),
            "compose: prometheus mounts docker/prometheus.yml", f"{prom_vols}")
    prom = node_yaml_to_json(nm, os.path.join(docker, "prometheus.yml"))
    targets = [(job.get("metrics_path", "/metrics"), t)
               for job in prom.get("scrape_configs", [])
               for sc in job.get("static_configs", []) for t in sc.get("targets", [])]
    R.check(("/metrics", "ssegw:8080") in targets,
            "prometheus.yml scrapes ssegw:8080/metrics (the compose service and its port)",
            f"{targets}")
    promtool = next((os.path.join(d, "promtool") for d in os.environ.get("PATH", "").split(":")
                     if os.access(os.path.join(d, "promtool"), os.X_OK)), None)
    if promtool:
        status, out = run([promtool, "check", "config", os.path.join(docker, "prometheus.yml")])
        R.check(status == 0, "promtool check config docker/prometheus.yml", out)
    else:
        R.note("promtool is not installed (SSEGW_BOOTSTRAP_MINIMAL=1?): prometheus.yml checked "
               "structurally only")

    # ---- Grafana -----------------------------------------------------------------------------
    graf = services.get("grafana", {})
    gvols = volume_map("grafana")
    prov = gvols.get("/etc/grafana/provisioning")
    R.check(prov == os.path.join(docker, "grafana", "provisioning"),
            "compose: grafana mounts docker/grafana/provisioning", f"{gvols}")
    if not prov:
        return
    ds_uids = []
    for f in sorted(os.listdir(os.path.join(prov, "datasources"))):
        doc = node_yaml_to_json(nm, os.path.join(prov, "datasources", f))
        for ds in doc.get("datasources", []):
            ds_uids.append(ds.get("uid"))
            m = re.match(r"^http://([^:/]+):(\d+)", ds.get("url", ""))
            R.check(ds.get("type") == "prometheus" and m and m.group(1) == "prometheus" and
                    m.group(2) == "9090", f"grafana: data source {ds.get('name')} is the "
                    "prometheus service on 9090", f"{ds}")
    dash_files = []
    for f in sorted(os.listdir(os.path.join(prov, "dashboards"))):
        doc = node_yaml_to_json(nm, os.path.join(prov, "dashboards", f))
        for p in doc.get("providers", []):
            path = p.get("options", {}).get("path")
            host = gvols.get(path)
            if R.check(host and os.path.isdir(host),
                       f"grafana: dashboard provider path {path} is a mounted folder", f"{gvols}"):
                dash_files += [os.path.join(host, x) for x in sorted(os.listdir(host))
                               if x.endswith(".json")]
    R.check(bool(dash_files), "grafana: at least one dashboard JSON is provisioned")
    home = (graf.get("environment") or {}).get("GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH")
    if home:
        host = next((h + home[len(c):] for c, h in gvols.items() if home.startswith(c + "/")), None)
        R.check(host and os.path.isfile(host), f"grafana: home dashboard {home} exists", host)
    for f in dash_files:
        dash = json.load(open(f, encoding="utf-8"))
        exprs, uids = [], set()
        stack = list(dash.get("panels", []))
        while stack:
            p = stack.pop()
            stack += p.get("panels", [])
            for t in p.get("targets", []):
                exprs.append(t.get("expr", ""))
                uids.add((t.get("datasource") or p.get("datasource") or {}).get("uid"))
        names = set()
        for e in exprs:
            for m in re.finditer(r"\b((?:ssegw|process)_[a-z_]+)\b", e):
                n = re.sub(r"_(bucket|sum|count)$", "", m.group(1))
                names.add(n)
        R.check(uids <= set(ds_uids), f"grafana: {os.path.basename(f)} queries the provisioned "
                "data source", f"uids {uids}, provisioned {ds_uids}")
        # Series that exist only once something happened (a retry, a budgeted key) are not in
        # one scrape of a fresh gateway: those must at least be documented metrics.
        documented = set(re.findall(r"`((?:ssegw|process)_[a-z0-9_]+)[{`]",
                                    open(os.path.join(src, "docs", "operations.md"),
                                         encoding="utf-8").read()))
        unknown = sorted(names - families - documented)
        R.check(exprs and not unknown, f"grafana: {os.path.basename(f)}'s {len(exprs)} queries use "
                f"{len(names)} metrics, each exported by the gateway's /metrics or documented in "
                "docs/operations.md", f"unknown: {unknown}; exported: {sorted(families)}")


if __name__ == "__main__":
    try:
        main()
    except Exception as e:  # a crash of the checker is a failure, with its reason
        import traceback
        R.fail("the checker itself", traceback.format_exc())
    print(f"{R.passed} passed, {R.failed} failed")
    sys.exit(1 if R.failed or not R.passed else 0)
