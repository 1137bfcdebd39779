"""Load on the virtual board: 1,000 protocol round trips on one link, and eight boards started at once from one
firmware, each with its own inputs. Every output is checked against host TFLM for its own input, and nothing is
left behind: no child process, no open file descriptor, no listening TCP port."""

from __future__ import annotations

import os
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.virtual_sine import sine_firmware
from tinydeploy.link import DeviceLink

pytestmark = pytest.mark.virtual

ROUND_TRIPS = 1000
BOARDS = 8
TRIPS_PER_BOARD = 60


def open_fds() -> dict[int, str]:
    """This process's open files, without the ones that only exist for an instant: /proc entries read by a
    thread that scans the process table (a test harness's) would otherwise count as leaks at random."""
    fds = {}
    for name in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{name}")
        except OSError:
            continue  # the directory's own descriptor, closed by now
        if not target.startswith("/proc/"):
            fds[int(name)] = target
    return fds


def child_processes() -> dict[int, str]:
    """Processes whose parent is this one (zombies included: an unreaped child is a leak too), by pid and start."""
    found = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as handle:
                stat = handle.read()
        except OSError:
            continue
        name, rest = stat[stat.index("(") + 1:stat.rindex(")")], stat[stat.rindex(")") + 2:].split()
        if int(rest[1]) == os.getpid():
            found[int(entry)] = f"{name} (started at {rest[19]})"  # identity, not state: R/S/Z vary with load
    return found


def listening_ports() -> set[int]:
    ports = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            rows = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            fields = row.split()
            if fields[3] == "0A":  # TCP_LISTEN
                ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


@contextmanager
def nothing_leaked(board_ports: list[int]):
    """Asserts that the block leaves no child process, no extra file descriptor and none of `board_ports`
    (filled in by the block) listening."""
    children, fds = child_processes(), open_fds()
    yield
    deadline = time.monotonic() + 5  # reader threads close their pipes as they finish
    while time.monotonic() < deadline and (set(child_processes().items()) - set(children.items())
                                           or len(open_fds()) > len(fds)):
        time.sleep(0.05)
    started = {pid: name for pid, name in child_processes().items() if children.get(pid) != name}
    assert not started, f"processes left running: {started}"
    leaked = {fd: target for fd, target in open_fds().items() if fds.get(fd) != target}
    assert len(open_fds()) <= len(fds), f"file descriptors left open: {leaked}"
    assert board_ports and not listening_ports() & set(board_ports)


@pytest.fixture(scope="module")
def sine(tmp_path_factory):
    built = sine_firmware(tmp_path_factory)
    open_fds(), child_processes()  # warm up anything these open lazily
    return built


def round_trip(link: DeviceLink, data: bytes) -> tuple[bytes, list[int]]:
    link.load_input(data)
    latencies = link.run(1, 0)
    return link.read_output(), latencies


def test_a_thousand_round_trips_on_one_link(sine):
    from tinydeploy.runners.qemu import QemuBoard

    ports: list[int] = []
    with nothing_leaked(ports):
        with QemuBoard(elf_path=sine.elf_path) as board, DeviceLink(board.port_url, timeout=10) as link:
            ports.append(board.port)
            link.wait_ready(20)
            started = time.monotonic()
            wrong = []
            for trip in range(ROUND_TRIPS):
                data = bytes([(trip * 97 + 11) % 256])  # every input value, in a scrambled order
                output, latencies = round_trip(link, data)
                if output != sine.expected[data] or len(latencies) != 1:
                    wrong.append((trip, data, output))
            seconds = time.monotonic() - started
            assert wrong == []
            assert link.corrupt_lines == 0 and link.stale_replies == 0 and not link.device_errors
            board.check_alive()
    print(f"{ROUND_TRIPS} round trips (in, run, out) in {seconds:.2f} s: {ROUND_TRIPS / seconds:.0f}/s")


def test_eight_boards_flashed_and_benchmarked_at_once_keep_their_own_results(sine):
    """Each board is flashed (QEMU started on the firmware) and benchmarked through tinydeploy.hil's Device, as
    `lab check` does, in its own thread, all at once."""
    from tinydeploy.boards import get_board
    from tinydeploy.flow import Device
    from tinydeploy.runners import runner_for

    # one input value per board, all with different expected outputs, so a mix-up cannot go unnoticed
    by_output = {}
    for data, output in sine.expected.items():
        by_output.setdefault(output, data)
    assert len(by_output) >= BOARDS
    own_inputs = [list(by_output.values())[i * len(by_output) // BOARDS] for i in range(BOARDS)]
    results: dict[int, object] = {}
    ports: list[int] = []
    barrier = threading.Barrier(BOARDS)

    def flash_and_bench(index: int) -> None:
        target = runner_for(get_board("virtual"), index=index)
        try:
            barrier.wait(30)  # all eight start together
            # QEMU dies with the thread that started it (parent-death signal): this thread also stops it
            device = Device.start(sine.firmware, target, ready_timeout=30)
            try:
                ports.append(target.qemu.port)
                outputs = [device.infer(own_inputs[index]) for _ in range(TRIPS_PER_BOARD)]
                bench = device.bench(runs=50, warmup=2, data=own_inputs[index])
                # the benchmark consumed the input (a run's first inference may overwrite it): no output to vouch
                # for until one more inference on a fresh load
                assert device.command("out")[-1] == "err state no-output"
                outputs.append(device.infer(own_inputs[index]))
                results[index] = (device.info.model, outputs, bench.latency_us, device.ram())
            finally:
                device.close()
        except BaseException as exc:  # reported by the main thread
            target.stop()
            results[index] = exc

    with nothing_leaked(ports):
        started = time.monotonic()
        threads = [threading.Thread(target=flash_and_bench, args=(i,), name=f"board{i}") for i in range(BOARDS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(120)
        seconds = time.monotonic() - started
        assert not any(thread.is_alive() for thread in threads)
    assert len(set(ports)) == BOARDS
    medians = []
    for index in range(BOARDS):
        result = results[index]
        assert not isinstance(result, BaseException), f"board {index}: {result!r}"
        model, outputs, latency, ram = result
        assert model == "sine" and ram.fits and ram.activation_bytes > 0
        assert outputs == [sine.expected[own_inputs[index]]] * (TRIPS_PER_BOARD + 1), f"board {index}: others' outputs"
        assert len(latency.samples) == 50 and 0 < latency.min <= latency.max < 1000
        medians.append(latency.median)
    print(f"{BOARDS} boards flashed, {TRIPS_PER_BOARD} round trips and 50 timed runs each, in {seconds:.2f} s "
          f"wall time; median latencies {sorted(set(medians))} us")
