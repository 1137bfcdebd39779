"""Tensor lifetimes and the activation memory over the ops (what must be live at each op)."""

from __future__ import annotations

from dataclasses import dataclass

from tinydeploy.model.tflite import TfliteModel


@dataclass(frozen=True)
class Lifetime:
    tensor: int
    first: int  # index of the op that writes it (-1: a graph input, live from the start)
    last: int  # index of the last op that reads it (graph outputs: the last op)
    nbytes: int


@dataclass(frozen=True)
class ActivationProfile:
    lifetimes: list[Lifetime]
    live_bytes: list[int]  # per op: bytes of activation tensors live while it runs
    peak_bytes: int  # the largest of them (0 without ops)
    peak_op: int  # the first op where it is reached (-1 without ops)

    def live_tensors(self, op: int) -> list[int]:
        """The tensors live while op `op` runs."""
        return [lt.tensor for lt in self.lifetimes if max(lt.first, 0) <= op <= lt.last]


def tensor_lifetimes(model: TfliteModel) -> list[Lifetime]:
    """Lifetimes of the non-constant tensors, in the op order of the graph."""
    first: dict[int, int] = {i: -1 for i in model.inputs}
    last: dict[int, int] = {}
    final_op = len(model.operators) - 1
    tensors = model.tensors
    for op in model.operators:
        for i in op.inputs:
            if i != -1 and not tensors[i].is_constant:
                first.setdefault(i, op.index)
                last[i] = op.index
        for i in op.outputs:
            first.setdefault(i, op.index)
            last.setdefault(i, op.index)
    for i in model.outputs:
        last[i] = final_op
    return [Lifetime(t, first[t], max(last.get(t, first[t]), first[t], 0), tensors[t].nbytes)
            for t in sorted(first) if not tensors[t].is_variable]


def activation_profile(model: TfliteModel) -> ActivationProfile:
    """Live bytes per op when every tensor keeps its own memory from its writer to its last reader.

    The peak is the lower bound of any planner that does not compute in place. One sweep over the lifetimes'
    starts and ends: linear in ops + tensors, whatever the graph's shape."""
    lifetimes = tensor_lifetimes(model)
    count = len(model.operators)
    change = [0] * (count + 1)
    for lt in lifetimes:
        start = max(lt.first, 0)
        if start <= lt.last and start < count:
            change[start] += lt.nbytes
            change[min(lt.last, count - 1) + 1] -= lt.nbytes
    live_bytes, running = [], 0
    for op in range(count):
        running += change[op]
        live_bytes.append(running)
    peak = max(live_bytes, default=0)
    return ActivationProfile(lifetimes, live_bytes, peak, live_bytes.index(peak) if live_bytes else -1)
