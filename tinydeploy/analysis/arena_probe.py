"""Worker process: tries TFLM arena sizes for one model, one per stdin line, answering on stdout.

Run only by tinydeploy.analysis.arena, which restarts it when a too-small arena makes TFLM crash.
Protocol: the parent writes "<mode> <bytes>" (mode: alloc | invoke | used); the worker answers "ok" or
"fail <reason>" ("used" answers "ok <bytes>": the arena TFLM's recording allocator says it took at that size).
TFLM writes its own diagnostics to the C-level stderr, which the parent collects.
"""

from __future__ import annotations

import os
import re
import sys
import tempfile


def _allocation_total(interpreter) -> int:
    """"Arena allocation total N bytes" from print_allocations(), which writes to the C-level stderr."""
    saved = os.dup(2)
    with tempfile.TemporaryFile() as capture:
        os.dup2(capture.fileno(), 2)
        try:
            interpreter.print_allocations()
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        capture.seek(0)
        text = capture.read().decode("utf-8", "replace")
    match = re.search(r"Arena allocation total (\d+) bytes", text)
    return int(match.group(1)) if match else 0


def main() -> None:
    import numpy as np
    from tflite_micro import runtime

    model = open(sys.argv[1], "rb").read()
    print("ready", flush=True)
    for line in sys.stdin:
        mode, size = line.split()
        try:
            interpreter = runtime.Interpreter.from_bytes(model, arena_size=int(size))
            if mode == "invoke":
                index = 0
                while True:
                    try:
                        details = interpreter.get_input_details(index)
                    except Exception:  # past the last input
                        break
                    interpreter.set_input(np.zeros(details["shape"], dtype=details["dtype"]), index)
                    index += 1
                interpreter.invoke()
            used = _allocation_total(interpreter) if mode == "used" else None
            del interpreter
            print("ok" if used is None else f"ok {used}", flush=True)
        except Exception as exc:  # TFLM reports every failure as a RuntimeError/ValueError
            print("fail", " ".join(str(exc).split())[:200], flush=True)


if __name__ == "__main__":
    main()
