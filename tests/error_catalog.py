"""Walks docs/errors.md, the one list of dln's error messages, against the sources and the binary.

  1. every entry's trigger is run: the exit code (or Python exception type) and the one error
     line must match the entry's template ({} matches anything);
  2. every message template in the sources (Error(...), py::*_error(...), IsValid fail(...) /
     *error = ..., the CLI's stderr prints, raise in python/dln) must be listed;
  3. every listed template must still be in the sources (entries marked `external` excepted).

Usage: /usr/bin/python3 error_catalog.py [-v] DLN_BINARY [PYTHON_MODULE_DIR]
       /usr/bin/python3 error_catalog.py --list     (the templates found in the sources)
Exits 77 (CTest: skipped) only when numpy is missing. Without a module dir (an empty second
argument: sanitizer builds have no module) the Python triggers are not run, and the summary says
how many.
"""
import glob
import json
import os
import re
import shlex
import subprocess
import sys
import tempfile
import time

VERBOSE = "-v" in sys.argv
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOC = os.path.join(ROOT, "docs", "errors.md")

# ---- 2. templates in the sources --------------------------------------------------------------

CPP_STARTS = re.compile(
    r"(?<![\w:])(?:dln::)?Error\s*\(|py::(?:value|type|index|key|import|attribute)_error\s*\("
    r"|std::(?:logic_error|runtime_error|invalid_argument|out_of_range)\s*\("
    r"|(?<![\w.])fail\s*\(|\*error\s*=(?!=)|fprintf\s*\(\s*stderr\s*,")


def strip_comments(text):
    """Blanks // and /* */ comments, keeping string literals and line numbers."""
    out, i, n = [], 0, len(text)
    while i < n:
        c = text[i]
        if c == '"' or c == "'":
            j = i + 1
            while j < n and text[j] != c:
                j += 2 if text[j] == "\\" else 1
            out.append(text[i:j + 1])
            i = j + 1
        elif text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
            out.append(" " * (j - i))
            i = j
        elif text.startswith("/*", i):
            j = text.find("*/", i) + 2
            out.append(re.sub(r"[^\n]", " ", text[i:j]))
            i = j
        else:
            out.append(c)
            i += 1
    return "".join(out)


def split_top(expr, seps):
    """Splits expr at the separator characters outside brackets and string literals."""
    parts, depth, cur, i = [], 0, [], 0
    while i < len(expr):
        c = expr[i]
        if c in "\"'":
            j = i + 1
            while j < len(expr) and expr[j] != c:
                j += 2 if expr[j] == "\\" else 1
            cur.append(expr[i:j + 1])
            i = j + 1
            continue
        if c in "([{":
            depth += 1
        elif c in ")]}":
            depth -= 1
            if depth < 0:
                break
        if depth == 0 and c in seps:
            parts.append("".join(cur))
            cur = []
            if c == ";":
                return parts
        else:
            cur.append(c)
        i += 1
    parts.append("".join(cur))
    return parts


def literal_text(operand):
    """The text of adjacent C++ string literals ("a" "b"), or None if operand is not one."""
    s = operand.strip()
    m = re.fullmatch(r'(?:std::string\s*\(\s*)?((?:"(?:[^"\\]|\\.)*"\s*)+)\)?', s, re.S)
    if not m:
        return None
    text = "".join(re.findall(r'"((?:[^"\\]|\\.)*)"', m.group(1)))
    return re.sub(r"\\(.)", lambda e: {"n": "\n", "t": "\t"}.get(e.group(1), e.group(1)), text)


def fmt_template(fmt):
    """fmt / f-string replacement fields {..} -> {}, {{ -> {."""
    out = re.sub(r"\{\{|\}\}|\{[^{}]*\}", lambda m: m.group(0)[0] if len(m.group(0)) == 2
                 and m.group(0)[0] == m.group(0)[1] else "\0", fmt)
    return out.replace("\0", "{}")


def template_of(expr):
    """The message template of a C++ expression, or None when it forwards another message."""
    pieces = []
    for operand in split_top(expr, "+"):
        op = operand.strip()
        m = re.match(r"(?:fmt::)?format\s*\(", op)
        lit = literal_text(op)
        if m:
            first = split_top(op[m.end():], ",")[0]
            lit = literal_text(first)
            pieces.append(fmt_template(lit) if lit is not None else "{}")
        elif lit is not None:
            pieces.append(lit)
        else:
            pieces.append("{}")
    t = re.sub(r"(\{\})+", "{}", "".join(pieces))
    if t.startswith("dln: error: "):
        t = t[len("dln: error: "):]
    t = t.replace("%s", "{}").rstrip("\n")
    return t if re.search(r"[A-Za-z]", t.replace("{}", "")) else None


def source_templates():
    """{template: [file:line, ...]} over src/, python/src and python/dln."""
    found = {}
    files = sorted(glob.glob(os.path.join(ROOT, "src", "**", "*.[ch]pp"), recursive=True) +
                   glob.glob(os.path.join(ROOT, "python", "src", "*.[ch]pp")))
    for path in files:
        text = strip_comments(open(path, encoding="utf-8").read())
        for m in CPP_STARTS.finditer(text):
            rest = text[m.end():]
            if m.group(0).startswith("*error"):
                expr = split_top(rest, ",;")[0]
            elif m.group(0).startswith("fprintf"):
                expr = split_top(rest, ",")[0]
                if not re.match(r'\s*"dln: (internal )?error', expr):
                    continue  # progress lines, warnings
            else:
                args = split_top(rest, ",")
                expr = args[0]
                if m.group(0).startswith("fail") and len(args) == 2 and not template_of(expr):
                    expr = '"{}: " + ' + args[1]  # npy.cpp: fail(path, reason)
            t = template_of(expr)
            if t:
                where = f"{os.path.relpath(path, ROOT)}:{text.count(chr(10), 0, m.start()) + 1}"
                found.setdefault(t, []).append(where)
    for path in sorted(glob.glob(os.path.join(ROOT, "python", "dln", "*.py"))):
        text = open(path, encoding="utf-8").read()
        for m in re.finditer(r"raise\s+\w+(?:Error|Exception)\s*\(", text):
            expr = split_top(text[m.end():], "")[0]
            parts = re.findall(r'f?"((?:[^"\\]|\\.)*)"', expr)
            t = fmt_template("".join(parts)) if parts else None
            if t:
                where = f"{os.path.relpath(path, ROOT)}:{text.count(chr(10), 0, m.start()) + 1}"
                found.setdefault(t, []).append(where)
    return found


# ---- docs/errors.md ---------------------------------------------------------------------------


class Entry:
    def __init__(self, template, expect, trigger, line):
        self.template, self.expect, self.trigger, self.line = template, expect, trigger, line
        self.external = False


def cell_code(cell):
    """The content of a `code` cell (single or double backticks)."""
    m = re.fullmatch(r"\s*(`+)\s?(.*?)\s?\1\s*", cell)
    return m.group(2) if m else cell.strip()


def parse_doc(path):
    """Entries (rows | message | exit | trigger |) and fixtures (```file/npy/bytes NAME)."""
    entries, files = [], []
    lines = open(path, encoding="utf-8").read().split("\n")
    i = 0
    while i < len(lines):
        line = lines[i]
        m = re.match(r"```(file|npy|bytes)\s+(\S+)\s*$", line)
        if m:
            j = i + 1
            while not lines[j].startswith("```"):
                j += 1
            files.append((m.group(1), m.group(2), "\n".join(lines[i + 1:j]) + "\n"))
            i = j + 1
            continue
        if line.startswith("|") and not re.match(r"\|\s*(message|code|-)", line):
            cells = [c.replace("\\|", "|") for c in re.split(r"(?<!\\)\|", line.strip())[1:-1]]
            if len(cells) == 3:  # several triggers: `a`<br>`b`
                for trigger in cells[2].split("<br>"):
                    e = Entry(cell_code(cells[0]), cells[1].strip(), cell_code(trigger), i + 1)
                    if e.expect.endswith("(external)"):
                        e.external, e.expect = True, e.expect[:-len("(external)")].strip()
                    entries.append(e)
        i += 1
    return entries, files


def write_fixtures(files, folder):
    """Text files first, then .npy (np.save of the expression), then bytes expressions."""
    import numpy as np
    for kind in ("file", "npy", "bytes"):
        for k, name, content in files:
            if k != kind:
                continue
            path = os.path.join(folder, name)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            if kind == "file":
                with open(path, "w") as f:
                    f.write(content if content.strip() else "")
                continue
            value = eval(content, {"np": np, "os": os, "T": folder})
            if kind == "npy":
                with open(path, "wb") as f:
                    np.save(f, value)
            else:
                with open(path, "wb") as f:
                    f.write(value)


# ---- 1. triggers ------------------------------------------------------------------------------


def pattern(template):
    return re.compile(".*?".join(re.escape(p) for p in template.split("{}")), re.S)


def gtest_bodies():
    """{Suite.Name: the text from its TEST line to the next} over tests/*.cpp."""
    bodies = {}
    for path in glob.glob(os.path.join(ROOT, "tests", "*.cpp")):
        text = open(path, encoding="utf-8").read()
        heads = list(re.finditer(r"\bTEST(?:_F|_P)?\(\s*(\w+)\s*,\s*(\w+)\s*\)", text))
        for k, m in enumerate(heads):
            end = heads[k + 1].start() if k + 1 < len(heads) else len(text)
            bodies[f"{m.group(1)}.{m.group(2)}"] = text[m.start():end]
    return bodies


def split_env(trigger):
    """({VAR: value}, the rest) for the VAR=value words a trigger starts with."""
    extra = {}
    while re.match(r"[A-Z_]+=\S* ", trigger):
        word, trigger = trigger.split(" ", 1)
        k, v = word.split("=", 1)
        extra[k] = v
    return extra, trigger


NO_TORCH = "needs torch"
NO_LIBTORCH = "experiment fig1-nonlinear: this dln was built without libtorch"


def run_trigger(e, dln, fixtures, pymod, work, templates):
    """None when the trigger gives e's error, else what went wrong."""
    subst = {"tmp": fixtures, "out": os.path.join(work, "out"), "root": ROOT, "long": "a" * 300}
    fill = lambda s: re.sub(r"\{(tmp|out|root|long)\}", lambda m: subst[m.group(1)], s)
    env = dict(os.environ, PYTHONPATH=pymod or "", MPLBACKEND="Agg")
    env.pop("DLN_BLAS_CORETYPE", None)
    want = [x.strip() for x in e.expect.split("/")]  # "2", "ValueError" or "2 / ValueError"
    code = next((x for x in want if x.isdigit()), None)
    exc = next((x for x in want if not x.isdigit()), None)
    extra, trigger = split_env(e.trigger)
    py_env = dict(env, **extra)
    if trigger.startswith("python:"):
        script = ("import os, sys\nimport numpy as np\ntry:\n    import dln\n"
                  f"    {fill(trigger[len('python:'):].strip())}\n"
                  "except Exception as x:\n    print(f'{type(x).__name__}: {x}', file=sys.stderr)\n"
                  "    sys.exit(1)\nsys.exit(0)\n")
        steps = [([sys.executable, "-c", script, fixtures], py_env)]
    else:
        steps = []
        for part in e.trigger.split(" && "):
            extra, part = split_env(part)
            words, step_env = shlex.split(fill(part)), dict(env, **extra)
            if not words or words[0] != "dln":
                return f"trigger must start with dln or python: ({part})"
            steps.append(([dln] + words[1:], step_env))
    for k, (cmd, step_env) in enumerate(steps):
        try:
            p = subprocess.run(cmd, env=step_env, cwd=work, capture_output=True, text=True,
                               timeout=60)
        except subprocess.TimeoutExpired:
            return "timed out"
        if k + 1 < len(steps):
            if p.returncode != 0:
                return f"set-up step exited {p.returncode}: {p.stderr.strip()[-300:]}"
            continue
        err = [l for l in p.stderr.splitlines() if l.strip()]
        if trigger.startswith("python:"):
            if p.returncode == 0:
                return "raised nothing"
            last = err[-1] if err else ""
            if last == "ModuleNotFoundError: No module named 'torch'":
                return NO_TORCH  # dln.torch's triggers need python3-torch
            if not exc or not last.startswith(f"{exc}: "):
                return f"expected {exc}, got: {last}"
            msg = last[len(exc) + 2:]
        else:
            if str(p.returncode) != code:
                return f"exit {p.returncode}, expected {code}; stderr: {p.stderr.strip()[-300:]}"
            lines = [l for l in err if l.startswith("dln: error: ")]
            if (lines and lines[0].startswith(f"dln: error: {NO_LIBTORCH}")
                    and not e.template.startswith(NO_LIBTORCH)):
                return NO_TORCH  # fig1-nonlinear's triggers need a build with libtorch
            if code == "3":  # a run that ended as diverged: the reason is in summary.json
                with open(os.path.join(subst["out"], "summary.json")) as f:
                    lines = ["dln: error: " + json.load(f)["message"]]
            elif e.external:
                lines = err[:1]
            elif len(lines) != 1 or len([l for l in err if not l.startswith("dln: warning:")]) != 1:
                return f"expected one line 'dln: error: ...', got: {p.stderr.strip()[-300:]}"
            msg = lines[0][len("dln: error: "):] if not e.external else lines[0]
        if not pattern(e.template).fullmatch(msg):
            return f"message does not match: {msg}"
        # No more specific listed template (one this template's pattern matches) may match.
        for t in templates:
            if t != e.template and pattern(t).fullmatch(msg) and pattern(e.template).fullmatch(t):
                return f"gives `{t}` instead: {msg}"
        if VERBOSE:
            print(f"ok: {msg}")
    return None


def main():
    if VERBOSE:
        sys.argv.remove("-v")
    if sys.argv[1:] == ["--list"]:
        for t, where in sorted(source_templates().items()):
            print(f"{t}\t{' '.join(where)}")
        return 0
    if len(sys.argv) < 2:
        print(__doc__)
        return 2
    try:
        import numpy  # noqa: F401 (fixtures and Python triggers)
    except ImportError:
        return 77
    dln = os.path.abspath(sys.argv[1])
    pymod = os.path.abspath(sys.argv[2]) if len(sys.argv) > 2 and sys.argv[2] else None
    entries, files = parse_doc(DOC)
    problems = []

    # 2 and 3: the sources and the list agree.
    src = source_templates()
    listed = {e.template for e in entries}
    for t, where in sorted(src.items()):
        if t not in listed:
            problems.append(f"not in docs/errors.md: `{t}` ({', '.join(where)})")
    for e in entries:
        if not e.external and e.template not in src:
            problems.append(f"docs/errors.md:{e.line}: `{e.template}` is no longer in the sources")
    seen = {}
    for e in entries:
        if seen.setdefault(e.template, e.line) != e.line:
            problems.append(f"docs/errors.md:{e.line}: `{e.template}` is listed twice")

    # 1: the triggers.
    gtests = gtest_bodies()
    counts = {"trigger": 0, "internal": 0, "gtest": 0, "no_module": 0, "no_torch": 0}
    t0 = time.time()
    with tempfile.TemporaryDirectory(prefix="dln-errors-") as tmp:
        fixtures = os.path.join(tmp, "files")
        os.makedirs(fixtures)
        write_fixtures(files, fixtures)
        for k, e in enumerate(entries):
            if e.trigger.startswith("internal:"):
                counts["internal"] += 1
                if len(e.trigger) < len("internal: ") + 10:
                    problems.append(f"docs/errors.md:{e.line}: `internal` needs a reason")
                continue
            if e.trigger.startswith("gtest:"):
                counts["gtest"] += 1
                name = e.trigger[len("gtest:"):].strip()
                fixed = max((p.strip() for p in e.template.split("{}")), key=len)
                if name not in gtests:
                    problems.append(f"docs/errors.md:{e.line}: no gtest {name} in tests/")
                elif fixed not in gtests[name]:
                    problems.append(f"docs/errors.md:{e.line}: gtest {name} does not mention "
                                    f"'{fixed}'")
                continue
            if split_env(e.trigger)[1].startswith("python:") and not pymod:
                counts["no_module"] += 1
                continue
            counts["trigger"] += 1
            work = os.path.join(tmp, f"t{k}")
            os.makedirs(work)
            why = run_trigger(e, dln, fixtures, pymod, work, listed)
            if why == NO_TORCH:
                counts["trigger"] -= 1
                counts["no_torch"] += 1
            elif why:
                problems.append(f"docs/errors.md:{e.line}: `{e.template}`: {why}")
    skipped = counts["no_module"]
    print(f"{len(seen)} families, {len(entries)} entries: {counts['trigger']} triggered, "
          f"{counts['gtest']} by gtest, {counts['internal']} internal; {len(src)} templates in "
          f"the sources; {time.time() - t0:.1f} s"
          + (f"; {skipped} Python triggers not run (no module built)" if skipped else "")
          + (f"; {counts['no_torch']} torch triggers not run (no torch / libtorch)"
             if counts["no_torch"] else ""))
    for p in problems:
        print("FAIL:", p)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
