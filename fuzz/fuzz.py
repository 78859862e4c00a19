"""Run one fuzz target with atheris (coverage-guided), or replay a corpus.

    PYTHONPATH=src:. python fuzz/fuzz.py packet_header -max_total_time=60 fuzz/corpus/packet_header
    PYTHONPATH=src:. python fuzz/fuzz.py --replay frames fuzz/corpus/frames

Targets: packet_header, frames, transport_params, tls_messages (fuzz/targets.py).
Any argument after the target goes to libFuzzer (-max_total_time, -runs,
-max_len, corpus directories). --replay runs each file once without
atheris (what the AddressSanitizer job does) and prints how many ran.
"""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def replay(target_name, paths):
    from fuzz.targets import TARGETS

    target = TARGETS[target_name]
    files = []
    for p in paths:
        if os.path.isdir(p):
            files += sorted(os.path.join(p, f) for f in os.listdir(p))
        else:
            files.append(p)
    start = time.monotonic()
    for path in files:
        with open(path, "rb") as f:
            data = f.read()
        try:
            target(data)
        except BaseException:
            print(f"FAILED on {path}", file=sys.stderr)
            raise
    print(f"{target_name}: {len(files)} inputs replayed in {time.monotonic() - start:.1f}s")


def main():
    args = sys.argv[1:]
    if args and args[0] == "--replay":
        replay(args[1], args[2:])
        return
    if not args:
        print(__doc__)
        sys.exit(2)
    import atheris

    with atheris.instrument_imports():
        from fuzz import targets
    target = targets.TARGETS[args[0]]
    atheris.Setup([sys.argv[0]] + args[1:], target)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
