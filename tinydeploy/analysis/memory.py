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
    live_tensors: list[list[int]]  # per op: which tensors

    @property
    def peak_bytes(self) -> int:
        return max(self.live_bytes, default=0)

    @property
    def peak_op(self) -> int:
        return self.live_bytes.index(self.peak_bytes) if self.live_bytes else -1


def tensor_lifetimes(model: TfliteModel) -> list[Lifetime]:
    """Lifetimes of the non-constant tensors, in the op order of the graph."""
    first: dict[int, int] = {i: -1 for i in model.inputs}
    last: dict[int, int] = {}
    final_op = len(model.operators) - 1
    for op in model.operators:
        for i in op.inputs:
            if i != -1 and not model.tensors[i].is_constant:
                first.setdefault(i, op.index)
                last[i] = op.index
        for i in op.outputs:
            first.setdefault(i, op.index)
            last.setdefault(i, op.index)
    for i in model.outputs:
        last[i] = final_op
    return [Lifetime(t, first[t], max(last.get(t, first[t]), first[t], 0), model.tensors[t].nbytes)
            for t in sorted(first) if not model.tensors[t].is_variable]


def activation_profile(model: TfliteModel) -> ActivationProfile:
    """Live bytes per op when every tensor keeps its own memory from its writer to its last reader.

    The peak is the lower bound of any planner that does not compute in place."""
    lifetimes = tensor_lifetimes(model)
    live_bytes, live_tensors = [], []
    for op in range(len(model.operators)):
        live = [lt for lt in lifetimes if max(lt.first, 0) <= op <= lt.last]
        live_tensors.append([lt.tensor for lt in live])
        live_bytes.append(sum(lt.nbytes for lt in live))
    return ActivationProfile(lifetimes, live_bytes, live_tensors)
