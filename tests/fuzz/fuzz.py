#!/usr/bin/env python3
"""Hostile and mutated runbooks through `runbook validate`, `plan` and `run --dry-run`.

Every input runs each command as its own process under a time limit and an address-space cap;
a panic (exit 101), a signal (an abort, a stack overflow), a timeout or a peak resident size
over the memory budget is a failure. Inputs are half mutations of corpus runbooks (bytes
flipped, slices cut, repeated or moved, hostile tokens inserted) and half generated from the
classes of issue 13 (long lines, default chains and circles, doubling defaults, deep
expressions, dry-run blow-ups, many findings, huge names, deep nesting, alias bombs). The
seed makes a run repeatable; a failing input is kept in --keep.

    python3 tests/fuzz/fuzz.py --binary target/debug/runbook --count 300
    make fuzz            (10,000 inputs)
"""
import argparse
import concurrent.futures
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time

COMMANDS = [
    ["validate", "{file}", "--format", "json"],
    ["plan", "{file}", "--format", "json"],
    ["run", "{file}", "--dry-run", "--format", "json"],
]
TOKENS = ["{{", "}}", "{{ A }}", "{{ step.Out }}", "-", "[", "]", "{", "}", ":", "&a ", "*a", "\t" * 2000,
          " " * 70000, "\n", "'", '"', "\\", "é", "\x00", "{{ variable:V }}", "step:a", "isEnd: true"]


def corpus_files(corpus):
    return sorted(os.path.join(corpus, name) for name in os.listdir(corpus) if name.endswith((".json", ".yaml")))


def mutate(rng, data):
    data = bytearray(data)
    for _ in range(rng.randint(1, 8)):
        if not data:
            break
        kind = rng.randrange(6)
        i = rng.randrange(len(data))
        j = min(len(data), i + rng.randint(1, 400))
        if kind == 0:
            data[i] = rng.randrange(256)
        elif kind == 1:
            del data[i:j]
        elif kind == 2:
            data[i:i] = data[i:j] * rng.randint(2, 50)
        elif kind == 3:
            data[i:i] = rng.choice(TOKENS).encode()
        elif kind == 4:
            k = rng.randrange(len(data))
            piece = bytes(data[i:j])
            del data[i:j]
            data[min(k, len(data)):min(k, len(data))] = piece
        else:
            data[i:j] = data[i:j].upper()
    return bytes(data)


def header(extra=""):
    return "schemaVersion: '0.3'\n" + extra


def update(expression):
    """A runbook with one variable update whose value is `expression` (x-expressions on)."""
    return ("x-expressions: true\nparameters:\n  A: {type: Integer, default: 1}\n"
            "variables:\n  V: {type: String, default: ''}\nmainSteps:\n"
            "  - {name: a, action: aws:updateVariable, inputs: {Name: 'variable:V', Value: \"{{ %s }}\"}}\n" % expression)


def generated(rng, index):
    """One hostile runbook of a class of issue 13."""
    classes = [
        "long-line", "default-chain", "default-circle", "doubling-defaults", "unary-minus",
        "dry-run-blowup", "duplicate-keys", "long-name", "deep-nesting", "alias-bomb", "many-steps",
        "expression-product", "operator-chain", "constant-fold", "value-amplify", "substitution",
    ]
    kind = classes[index % len(classes)]
    n = rng.randint(10, 6000)
    if kind == "long-line":
        blank = rng.choice([" ", "\t"])
        text = '{"schemaVersion": "0.3",' + blank * rng.randint(60000, 120000) + '"bogus": 1, "mainSteps": []}'
    elif kind in ("default-chain", "default-circle", "doubling-defaults"):
        lines = ["parameters:"]
        count = rng.randint(20, 60) if kind == "doubling-defaults" else n
        for i in range(count):
            nxt = i + 1 if i + 1 < count else 0
            last = i + 1 == count and kind != "default-circle"
            ref = "{{ P%d }}" % nxt
            default = "ab" if last else (ref * 2 if kind == "doubling-defaults" else ref)
            lines.append("  P%d: {type: String, default: '%s'}" % (i, default))
        text = header("\n".join(lines) + "\nmainSteps:\n  - {name: a, action: aws:sleep, inputs: {Duration: PT0S}}\n")
    elif kind == "unary-minus":
        text = header("x-expressions: true\nparameters:\n  A: {type: Integer, default: 1}\n"
                      "mainSteps:\n  - {name: a, action: aws:sleep, inputs: {Duration: 'PT{{ %sA }}S'}}\n"
                      % (rng.choice(["-", "not ", "(", "["]) * rng.randint(100, 20000)))
    elif kind == "dry-run-blowup":
        steps = ["  - {name: s%d, action: aws:updateVariable, onFailure: Continue, "
                 "inputs: {Name: 'variable:V', Value: '{{ variable:V }}%d'}}" % (i, i) for i in range(rng.randint(10, 40))]
        text = header("variables:\n  V: {type: String, default: ''}\nmainSteps:\n" + "\n".join(steps) + "\n")
    elif kind == "duplicate-keys":
        text = ('{"schemaVersion": "0.3", "mainSteps": [{"name": "a", "action": "aws:sleep", "inputs": {"Duration": "PT0S"'
                + ', "k": 1' * rng.randint(1000, 20000) + "}}]}")
    elif kind == "long-name":
        text = header("mainSteps:\n  - {name: a, action: aws:executeAwsApi, inputs: {Service: ec2, Api: %s}}\n"
                      % ("D" * rng.randint(1000, 200000)))
    elif kind == "deep-nesting":
        depth = rng.randint(100, 5000)
        text = header("mainSteps:\n  - {name: a, action: aws:sleep, inputs: {Duration: PT0S, X: %s1%s}}\n"
                      % ("[" * depth, "]" * depth))
    elif kind == "alias-bomb":
        lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x]"]
        for i in range(1, rng.randint(5, 12)):
            lines.append("a%d: &a%d [*a%d, *a%d, *a%d, *a%d, *a%d, *a%d, *a%d, *a%d, *a%d]" % ((i, i) + (i - 1,) * 9))
        text = header("\n".join(lines) + "\nmainSteps:\n  - {name: a, action: aws:sleep, inputs: {Duration: PT0S}}\n")
    elif kind == "many-steps":
        steps = ["  - {name: s%d, action: aws:branch, onFailure: 'step:s%d', inputs: {Choices: [{NextStep: s%d, "
                 "Variable: '{{ P }}', StringEquals: x}], Default: s%d}}" % (i, (i + 1) % n, (i + 2) % n, (i + 1) % n)
                 for i in range(min(n, 3000))]
        text = header("parameters:\n  P: {type: String}\nmainSteps:\n" + "\n".join(steps) + "\n")
    elif kind == "operator-chain":
        op = rng.choice([" + ", " ~ ", " and ", " or ", "|string", ".x", "[0]", " * "])
        text = header(update("A" + (op + "A" if op.startswith(" ") else op) * rng.randint(200, 60000)))
    elif kind == "constant-fold":
        n = rng.choice([10 ** 6, 10 ** 7, 10 ** 8, 10 ** 9])
        text = header(update(rng.choice(["[1] * %d", "(1,) * %d", "'ab' * %d", "[1] * %d == [2]",
                                         "['x' * 1000] * %d", "('a' ~ 'b') * %d"]) % n))
    elif kind == "value-amplify":
        n = rng.choice([10 ** 3, 10 ** 5, 10 ** 7])
        text = header(update(rng.choice([
            "range(100000) | join('x' * %d)", "('x' * A * %d) | replace('', 'yyyy')",
            "('x' * A * %d) | list | length", "[A ~ 'x' * %d, A ~ 'x' * 1000000] * 50",
            "(range(1000) | map('string') | list) * %d", "('x' * A * %d) | split('') | unique | list",
        ]) % n))
    elif kind == "substitution":
        size = rng.randint(10000, 250000)
        refs = rng.randint(10, 4000)
        text = header("parameters:\n  P: {type: String, default: '%s'}\nvariables:\n  V: {type: String, default: ''}\n"
                      "mainSteps:\n  - {name: a, action: aws:updateVariable, inputs: {Name: 'variable:V', Value: '%s'}}\n"
                      % ("x" * size, "{{ P }}" * refs))
    else:
        text = header("x-expressions: true\nparameters:\n  A: {type: String, default: '{{ %s }}'}\n"
                      "mainSteps:\n  - {name: a, action: aws:sleep, inputs: {Duration: PT0S}}\n"
                      % rng.choice(["'x' * 1000", "[1] * 1000", "range(1000) | list", "'ab' * 50000"]))
    return kind, text.encode()


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--binary", required=True)
    parser.add_argument("--corpus", default=os.path.join(os.path.dirname(__file__), "../../../shared/corpus/ssm-public"))
    parser.add_argument("--count", type=int, default=300)
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--time-limit", type=float, default=10.0)
    parser.add_argument("--memory-mb", type=int, default=512)
    parser.add_argument("--keep", default=os.path.join(tempfile.gettempdir(), "runbook-fuzz-failures"))
    parser.add_argument("--json", help="write the figures here")
    a = parser.parse_args()
    rng = random.Random(a.seed)
    corpus = corpus_files(a.corpus) if os.path.isdir(a.corpus) else []
    work = tempfile.mkdtemp(prefix="runbook-fuzz-")
    inputs = []
    for index in range(a.count):
        if corpus and index % 2 == 0:
            source = rng.choice(corpus)
            with open(source, "rb") as f:
                data = mutate(rng, f.read())
            kind = "mutated-corpus"
            suffix = os.path.splitext(source)[1]
        else:
            kind, data = generated(rng, index // 2)
            suffix = ".json" if data.lstrip().startswith(b"{") else ".yaml"
        path = os.path.join(work, "input-%05d%s" % (index, suffix))
        with open(path, "wb") as f:
            f.write(data)
        inputs.append((kind, path))

    # The address-space cap stops a runaway allocation from taking the machine; the budget
    # judged is the peak resident size, read per process with wait4 below.
    address_limit = max(4 * a.memory_mb, 4096) * 1024 * 1024

    def job(item):
        kind, path = item
        results = []
        for command in COMMANDS:
            args = [a.binary] + [part.format(file=path) for part in command]

            def limit():
                resource.setrlimit(resource.RLIMIT_AS, (address_limit, address_limit))
                resource.setrlimit(resource.RLIMIT_CORE, (0, 0))

            start = time.monotonic()
            process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, preexec_fn=limit)
            deadline = start + a.time_limit
            status = rusage = None
            timed_out = False
            while True:
                pid, status, rusage = os.wait4(process.pid, os.WNOHANG)
                if pid:
                    break
                if time.monotonic() > deadline:
                    process.kill()
                    _, status, rusage = os.wait4(process.pid, 0)
                    timed_out = True
                    break
                time.sleep(0.002)
            process.returncode = os.waitstatus_to_exitcode(status)
            elapsed = time.monotonic() - start
            peak_mb = rusage.ru_maxrss / 1024
            code = process.returncode
            problem = None
            if timed_out:
                problem = "over %.0f s" % a.time_limit
            elif code < 0:
                problem = "killed by signal %d" % -code
            elif code == 101:
                problem = "panicked"
            elif code not in (0, 1, 2, 3, 4, 5, 6, 7, 8):
                problem = "exit %d" % code
            elif peak_mb > a.memory_mb:
                problem = "peak %.0f MB" % peak_mb
            results.append((command[0], code, elapsed, peak_mb, problem))
        return kind, path, results

    started = time.monotonic()
    figures = {}
    failures = []
    with concurrent.futures.ThreadPoolExecutor(a.jobs) as pool:
        for kind, path, results in pool.map(job, inputs):
            entry = figures.setdefault(kind, {"inputs": 0, "slowest": (0, ""), "largest": (0, "")})
            entry["inputs"] += 1
            for command, code, elapsed, peak_mb, problem in results:
                name = "%s %s" % (command, os.path.basename(path))
                if elapsed > entry["slowest"][0]:
                    entry["slowest"] = (elapsed, name)
                if peak_mb > entry["largest"][0]:
                    entry["largest"] = (peak_mb, name)
                if problem:
                    os.makedirs(a.keep, exist_ok=True)
                    kept = os.path.join(a.keep, os.path.basename(path))
                    with open(path, "rb") as src, open(kept, "wb") as dst:
                        dst.write(src.read())
                    failures.append("%s (%s): %s, kept as %s" % (name, kind, problem, kept))
    total = time.monotonic() - started
    print("fuzz: %d inputs x %d commands in %.1f s (seed %d), %d failures"
          % (len(inputs), len(COMMANDS), total, a.seed, len(failures)))
    for kind in sorted(figures):
        entry = figures[kind]
        print("  %-20s %5d inputs; slowest %.2f s (%s); largest %.0f MB (%s)"
              % (kind, entry["inputs"], entry["slowest"][0], entry["slowest"][1], entry["largest"][0], entry["largest"][1]))
    for failure in failures[:50]:
        print("  FAIL " + failure)
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"inputs": len(inputs), "seconds": total, "failures": failures, "classes": figures}, f, indent=2)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
