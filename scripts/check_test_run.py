#!/usr/bin/env python3
"""What a ctest run of thaw's suite really did: every test counted, every skip with its reason.

    scripts/check_test_run.py --build-dir build --junit build/ctest-junit.xml [--allow-skip REGEX]
                              [--tests REGEX]

scripts/test.sh (the README's test command, and so CI) runs it after `ctest --output-junit`. It fails when

- the Catch2 test cases of a test program are not exactly the ctest entries of that program (a ';' in a
  TEST_CASE name once split one case into two entries that matched nothing and "passed" with nothing run);
- a registered test is missing from the run's report, or did not run for a reason other than a skip (a
  failed fixture, a missing executable);
- a test skipped for a reason that --allow-skip does not accept. By default only what a machine may lack
  without anything being wrong: a CUDA device (or a CUDA build), and the pets-mini images. A missing
  package is a failure, never a skip.

With --tests, only the registered tests whose names match REGEX must be in the report (the subset that
`ctest -R REGEX` ran: scripts/test-emulated-cuda.sh runs the CUDA tests of an emulated build).

Its last line is the summary: how many tests ran, passed, failed and were skipped, and why they were skipped.
Standard library only, so it runs with any python3.
"""
import argparse
import collections
import json
import re
import subprocess
import sys
import xml.etree.ElementTree as ET

DEFAULT_ALLOWED_SKIPS = r"no CUDA device|built without CUDA|pets-mini not found"
SKIP_MARKER = re.compile(r"THAW-SKIPPED: (.*)")


def ctest_tests(build_dir):
    """[(name, command list)] of every test ctest knows in build_dir."""
    listing = subprocess.run(["ctest", "--test-dir", build_dir, "--show-only=json-v1"], check=True,
                             capture_output=True, text=True).stdout
    return [(t["name"], t.get("command", [])) for t in json.loads(listing)["tests"]]


def catch_cases(executable):
    """The test case names a Catch2 (v2 or v3) program holds."""
    out = subprocess.run([executable, "--list-test-names-only"], capture_output=True, text=True).stdout
    return sorted(line.strip() for line in out.splitlines() if line.strip())


def check_inventory(tests):
    """Problems: for each Catch2 program, its cases against its ctest entries ("<program>:<case>")."""
    by_program = collections.defaultdict(list)
    for name, command in tests:
        if len(command) >= 2 and "--warn" in command:  # entries made by catch_discover_tests
            by_program[command[0]].append(name)
    problems = []
    for executable, names in sorted(by_program.items()):
        program = executable.rsplit("/", 1)[-1]
        registered = sorted(n[len(program) + 1:].strip() for n in names if n.startswith(program + ":"))
        cases = catch_cases(executable)
        if registered != cases:
            only_ctest = sorted(set(registered) - set(cases))
            only_catch = sorted(set(cases) - set(registered))
            problems.append(f"{program}: {len(cases)} Catch2 test cases but {len(registered)} ctest entries"
                            + (f"; entries that match no case: {only_ctest}" if only_ctest else "")
                            + (f"; cases with no entry: {only_catch}" if only_catch else ""))
    return problems, sum(len(n) for n in by_program.values()), len(by_program)


def read_junit(path):
    """{name: (status, skip reason or None)} from ctest's --output-junit file."""
    results = {}
    for case in ET.parse(path).getroot().iter("testcase"):
        out = "".join(e.text or "" for e in case.iter("system-out"))
        marker = SKIP_MARKER.search(out)
        status = case.get("status")  # run | fail | notrun
        results[case.get("name")] = (status, marker.group(1).strip() if marker else None)
    return results


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--build-dir", required=True)
    parser.add_argument("--junit", required=True, help="the file ctest --output-junit wrote")
    parser.add_argument("--allow-skip", default=DEFAULT_ALLOWED_SKIPS,
                        help=f"regex of the skip reasons accepted (default: {DEFAULT_ALLOWED_SKIPS!r})")
    parser.add_argument("--tests", help="regex: only the tests whose names match it were run (ctest -R)")
    args = parser.parse_args()

    tests = ctest_tests(args.build_dir)
    problems, catch_entries, programs = check_inventory(tests)
    if args.tests:
        subset = re.compile(args.tests)
        tests = [(name, command) for name, command in tests if subset.search(name)]
        if not tests:
            problems.append(f"no registered test matches --tests {args.tests!r}")
    results = read_junit(args.junit)
    allowed = re.compile(args.allow_skip)
    passed = failed = 0
    skips = collections.Counter()
    for name, _ in tests:
        if name not in results:
            problems.append(f"{name}: registered but not in the run's report (not run)")
            continue
        status, reason = results[name]
        if reason is not None and status != "fail":
            skips[reason] += 1
            if not allowed.search(reason):
                problems.append(f"{name}: skipped for a reason that is not allowed here: {reason}")
        elif status == "run":
            passed += 1
        elif status == "fail":
            failed += 1
        else:
            problems.append(f"{name}: did not run (status {status}, no THAW-SKIPPED reason)")

    for problem in problems:
        print(f"check_test_run: {problem}", file=sys.stderr)
    skipped = sum(skips.values())
    why = "; ".join(f"{count} x {reason}" for reason, count in sorted(skips.items()))
    what = (f"{len(tests)} tests matching {args.tests!r}" if args.tests else
            f"{len(tests)} tests ({catch_entries} Catch2 test cases from {programs} programs, each its own ctest "
            f"entry, and {len(tests) - catch_entries} others)")
    print(f"check_test_run: {what}: {passed} passed, {failed} failed, {skipped} skipped"
          + (f" ({why})" if why else "") + (f"; {len(problems)} problem(s) above" if problems else ""))
    return 1 if problems or failed else 0


if __name__ == "__main__":
    sys.exit(main())
