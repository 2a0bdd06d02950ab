"""PyYAML's verdict on every `.yaml` file of a folder, for `tests/tests/yaml_compat.rs`.

Prints one JSON object: {"pyyaml": VERSION, "files": {NAME: VERDICT}}, where VERDICT is
{"verdict": "accept", "value": VALUE} or {"verdict": "reject", "problem": TEXT, "line": N,
"column": N} (1-based). The loader is PyYAML's pure-Python SafeLoader, whose scanner SnakeYAML
shares; values JSON has no form for (dates) are written as their text.

Usage: python pyyaml_verdicts.py FOLDER
"""
import json
import os
import sys

import yaml


def verdict(text):
    try:
        value = yaml.load(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark
        return {
            "verdict": "reject",
            "problem": error.problem,
            "line": mark.line + 1 if mark else None,
            "column": mark.column + 1 if mark else None,
        }
    except yaml.YAMLError as error:
        return {"verdict": "reject", "problem": str(error), "line": None, "column": None}
    return {"verdict": "accept", "value": json.loads(json.dumps(value, default=str))}


def main():
    folder = sys.argv[1]
    files = {}
    for name in sorted(os.listdir(folder)):
        if name.endswith(".yaml"):
            with open(os.path.join(folder, name), encoding="utf-8", newline="") as f:
                files[name] = verdict(f.read())
    json.dump({"pyyaml": yaml.__version__, "files": files}, sys.stdout, indent=1, sort_keys=True)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
