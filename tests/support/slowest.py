"""Print the slowest tests of one or more JUnit XML reports (``make test`` writes one for its parallel
part and one for its serial part): ``python tests/support/slowest.py N report.xml ...``."""

from __future__ import annotations

import sys
import xml.etree.ElementTree as ET


def slowest(paths: list[str], n: int) -> list[tuple[float, str]]:
    cases = []
    for path in paths:
        for case in ET.parse(path).getroot().iter("testcase"):
            name = f"{case.get('classname', '')}::{case.get('name', '')}".lstrip(":")
            cases.append((float(case.get("time") or 0.0), name))
    return sorted(cases, reverse=True)[:n]


def main(argv: list[str]) -> int:
    n, paths = int(argv[0]), argv[1:]
    rows = slowest(paths, n)
    total = sum(seconds for seconds, _ in slowest(paths, 10**9))
    print(f"===== {len(rows)} slowest tests (of {total:.0f} s of test time) =====")
    for seconds, name in rows:
        print(f"{seconds:8.1f} s  {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
