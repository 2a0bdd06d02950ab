#!/usr/bin/env python3
"""`make bench-peers`: the same work through runbook and its peers, side by side, as ratios.

The peers are measured by the scripts of ../shared/bench (they install what they need into a
cache folder, never into this repository); runbook is measured here the same way, whole
processes interleaved round by round, per-item costs from the difference of two sizes (so
start-up cancels out):

  schema      the whole corpus validated: `runbook validate` (text, with its warnings)
              against Python jsonschema with AWS's schema (one whole process each)
  per step    aws:sleep PT0S steps, 100 and 1000, every step durable (`runbook run`), against
              cdk-ssm-documents' simulation (in memory, not durable), Ansible `debug` tasks
              and the fsync floor (one SQLite commit with fsync on this disk)
  per script  aws:executeScript steps running a no-op Python function, 10 and 100, against
              Chaos Toolkit `python` activities

Run:  python3 engine/benches/peers.py --runbook target/release/runbook [--runs 5]
Takes about 15 minutes on 2 cores the first time (installs), less after. Prints figures;
asserts nothing.
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PEERS = os.path.join(os.path.dirname(ROOT), "shared", "bench")
sys.path.insert(0, PEERS)
sys.dont_write_bytecode = True
import _common as c  # noqa: E402  (the peers' own helpers: timing, medians)


def peer(script, results, reuse, *args):
    """Runs one peer script (or, with `reuse`, takes its last figures); its JSON figures."""
    out = os.path.join(results, script.replace(".py", ".json"))
    if not (reuse and os.path.exists(out)):
        subprocess.run([sys.executable, os.path.join(PEERS, script), *args, "--json", out], check=True)
    with open(out) as f:
        return json.load(f)


def sleeps(path, n):
    steps = "".join(f"  - {{name: s{i}, action: aws:sleep, inputs: {{Duration: PT0S}}}}\n" for i in range(n))
    with open(path, "w") as f:
        f.write(f"schemaVersion: '0.3'\nmainSteps:\n{steps}")


def scripts(path, n):
    step = ("  - name: s{i}\n    action: aws:executeScript\n    inputs:\n      Runtime: python3.11\n"
            "      Handler: noop\n      Script: \"def noop(events, context):\\n  return None\"\n")
    with open(path, "w") as f:
        f.write("schemaVersion: '0.3'\nmainSteps:\n" + "".join(step.format(i=i) for i in range(n)))


def fresh_run(runbook, path, state):
    """`runbook run` in a fresh state directory each time (the shell's start is in both sizes)."""
    return ["sh", "-c", f'rm -rf "{state}" && exec "{runbook}" run "{path}" --state-dir "{state}"']


def per_item(res, small, large, n_small, n_large):
    return c.per_item_medians(res[small], res[large], n_small, n_large)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runbook", default=os.path.join(ROOT, "target", "release", "runbook"))
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--reuse", action="store_true", help="take the peers' figures of the last run; measure runbook only")
    ap.add_argument("--corpus", default=os.path.join(os.path.dirname(ROOT), "shared", "corpus", "ssm-public"))
    a = ap.parse_args()
    if not os.path.isdir(PEERS):
        sys.exit(f"bench-peers: {PEERS} is missing (the peers' scripts live in ../shared/bench)")
    results = c.cache_dir("results", "peers")
    work = tempfile.mkdtemp(prefix="runbook-peers-")
    runs = str(a.runs)

    floor = peer("journal_floor.py", results, a.reuse)
    schema = peer("schema_validate.py", results, a.reuse, a.corpus, "--runs", runs)
    cdk = peer("cdk_simulate.py", results, a.reuse, "--runs", runs, "--corpus", a.corpus)
    ansible = peer("ansible_tasks.py", results, a.reuse, "--runs", runs)
    chaos = peer("chaostoolkit_activities.py", results, a.reuse, "--runs", runs)

    for n in (100, 1000):
        sleeps(os.path.join(work, f"sleep-{n}.yaml"), n)
    for n in (10, 100):
        scripts(os.path.join(work, f"script-{n}.yaml"), n)
    env = dict(os.environ, RUNBOOK_PYTHON=sys.executable)
    cases = [("validate corpus", [a.runbook, "validate", a.corpus], None)]
    cases += [(f"sleep {n}", fresh_run(a.runbook, os.path.join(work, f"sleep-{n}.yaml"),
                                        os.path.join(work, f"state-sleep-{n}")), None) for n in (100, 1000)]
    cases += [(f"script {n}", fresh_run(a.runbook, os.path.join(work, f"script-{n}.yaml"),
                                         os.path.join(work, f"state-script-{n}")), env) for n in (10, 100)]
    ours = c.interleave(cases, a.runs)
    shutil.rmtree(work, ignore_errors=True)

    validate = statistics.median(r["wall"] for r in ours["validate corpus"])
    jsonschema = statistics.median(r["wall"] for r in schema["whole_process"]["validate corpus"])
    step = per_item(ours, "sleep 100", "sleep 1000", 100, 1000)
    script = per_item(ours, "script 10", "script 100", 10, 100)
    fsync = next(v["median_us"] for k, v in floor.items()
                 if isinstance(v, dict) and "sync=FULL: 1 row / txn" in k and k.startswith("(b)")) / 1e6
    # Chaos Toolkit's per-activity cost is below the noise at 10 -> 100: its 10 -> 1000 is used.
    rows = [
        ("the corpus validated, whole process", validate, "Python jsonschema, AWS's schema", jsonschema),
        ("a durable aws:sleep step", step, "cdk-ssm-documents simulation (not durable)",
         cdk["yaml"]["per_step_wall_s"]),
        ("a durable aws:sleep step", step, "an Ansible debug task", ansible["debug"]["per_task_wall_s"]),
        ("an aws:executeScript step (Python)", script, "a Chaos Toolkit python activity",
         chaos["python"]["per_activity_10_1000"]["wall_s"]),
    ]
    print("\n# runbook against its peers (medians; ratio = the peer's time / runbook's: above 1, runbook is faster)")
    for what, mine, other, theirs in rows:
        print(f"  {what:38s} {mine * 1e3:9.3f} ms   {other:44s} {theirs * 1e3:9.3f} ms   "
              f"{theirs / mine:7.2f}x")
    print(f"  a durable aws:sleep step costs {step / fsync:.1f} fsync'd SQLite commits on this disk "
          f"(one: {fsync * 1e3:.3f} ms; an aws:sleep step, which is pure, commits once)")
    figures = [{"runbook": w, "runbook_s": m, "peer": o, "peer_s": t, "ratio": t / m} for w, m, o, t in rows]
    figures.append({"runbook": "a durable aws:sleep step", "runbook_s": step, "fsync_floor_s": fsync})
    c.write_json(os.path.join(results, "ratios.json"), figures)


if __name__ == "__main__":
    main()
