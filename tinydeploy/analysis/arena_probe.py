"""Worker process: tries TFLM arena sizes for one model, one per stdin line, answering on stdout.

Run only by tinydeploy.analysis.arena, which restarts it when a too-small arena makes TFLM crash.
Protocol: the parent writes "<mode> <bytes>" (mode: alloc | invoke); the worker answers "ok" or
"fail <reason>". TFLM writes its own diagnostics to the C-level stderr, which the parent collects.
"""

from __future__ import annotations

import sys


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
            del interpreter
            print("ok", flush=True)
        except Exception as exc:  # TFLM reports every failure as a RuntimeError/ValueError
            print("fail", " ".join(str(exc).split())[:200], flush=True)


if __name__ == "__main__":
    main()
