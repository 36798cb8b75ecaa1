#!/usr/bin/env python3
"""Prints the failing checks (id, status, message) of the scenarios named on stdin, from the
conformance suite's results directory (argv[1]: one `server-<scenario>-<time>/checks.json` each)."""

import json
import sys
from pathlib import Path

results = Path(sys.argv[1])
for scenario in (line.strip() for line in sys.stdin):
    if not scenario:
        continue
    for checks_file in sorted(results.glob(f"server-{scenario}-*/checks.json")):
        try:
            checks = json.loads(checks_file.read_text())
        except (OSError, ValueError) as error:
            print(f"  {scenario}: cannot read {checks_file}: {error}")
            continue
        for check in checks:
            if check.get("status") in ("FAILURE", "WARNING"):
                message = check.get("errorMessage") or json.dumps(check.get("details"))[:300]
                print(f"  {scenario}: {check.get('id')} {check.get('status')}: {message}")
