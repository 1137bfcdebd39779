"""Exact channel pruning: the channels a model never needs are not computed, before lowering.

A convolution, depthwise convolution or dense layer whose weights for an output channel are all zero writes one
constant into that channel (its bias, requantized). Depthwise convolutions and pooling carry such a channel on
(channel c of the output depends only on channel c of the input), still constant when every tap adds the same:
when the constant is the input zero point (a tap in the padding adds exactly what it adds) or no window touches
the padding. A channel is removed from every tensor of such a chain ("group") when every op that reads it at the
end of the chain can do without it:
- a convolution or dense layer whose weights for that input channel are all zero, or whose input is that
  constant: it contributes (constant - zero point) * weights, the same at every output position when the constant
  is the zero point (0) or no window touches the padding, so it goes into the bias;
- and nothing else reads it (no ADD, no graph output, ...).
Where padding makes the contribution vary (a constant other than the zero point before a padded convolution), the
channel stays. The rewritten model gives the same outputs bit for bit: only terms that are exactly zero or exactly
constant are moved, in integers. Convolution channels that stay but have all-zero weights are written as constants
by the fast kernels (td_dot.h). Only int8 layers are rewritten (the constants above are int8 arithmetic): int16x8
layers stay as they are, and so does every channel of a graph input or output, in models with any number of them."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np

from tinydeploy.engine.quant import INT32_MAX, INT32_MIN
from tinydeploy.model.tflite import Operator, Tensor, TfliteModel

WEIGHTED = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED")
POOLS = ("AVERAGE_POOL_2D", "MAX_POOL_2D")


@dataclass
class OpPruning:
    """What pruning changed at one op."""

    op_index: int
    op: str
    output_channels_removed: int = 0
    input_channels_removed: int = 0
    input_channels_folded: int = 0  # of those removed: constants moved into the bias
    macs_removed: int = 0
    bytes_removed: int = 0  # weights, biases and per-channel scales of the removed channels

    def to_json(self) -> dict:
        return dataclasses.asdict(self)


@dataclass
class Pruning:
    ops: list[OpPruning] = field(default_factory=list)  # only the ops that changed

    @property
    def channels_removed(self) -> int:
        """Output channels of convolutions, depthwise convolutions and dense layers no longer computed."""
        return sum(op.output_channels_removed for op in self.ops if op.op in WEIGHTED)

    @property
    def macs_removed(self) -> int:
        return sum(op.macs_removed for op in self.ops)

    @property
    def bytes_removed(self) -> int:
        return sum(op.bytes_removed for op in self.ops)

    def for_op(self, index: int) -> OpPruning | None:
        return next((op for op in self.ops if op.op_index == index), None)

    def to_json(self) -> dict:
        return {"channels_removed": self.channels_removed, "macs_removed": self.macs_removed,
                "bytes_removed": self.bytes_removed, "ops": [op.to_json() for op in self.ops]}


def prune_channels(model: TfliteModel) -> tuple[TfliteModel, Pruning]:
    """The model without the channels it never needs (and the report); the same model when there are none."""
    graph = _Graph(model)
    constants = graph.forward_constants()
    dropped = graph.droppable(constants)
    if not any(dropped.values()):
        return model, Pruning()
    return graph.rewrite(dropped, constants)


def _requantize(acc: int, multiplier: int, shift: int) -> int:
    from tinydeploy.engine.ops.common import requantize

    return requantize(acc, multiplier, shift)


class _Graph:
    def __init__(self, model: TfliteModel):
        self.model = model
        self.tensors = model.tensors
        self.consumers: dict[int, list[Operator]] = {}
        self.producer: dict[int, Operator] = {}
        self.uses: dict[int, int] = {}  # constant tensor -> how many operator inputs read it
        for op in model.operators:
            for t in op.inputs:
                if t != -1 and not self.tensors[t].is_constant:
                    self.consumers.setdefault(t, []).append(op)
                elif t != -1:
                    self.uses[t] = self.uses.get(t, 0) + 1
            for t in op.outputs:
                self.producer[t] = op
        self.boundary = set(model.inputs) | set(model.outputs)

    # -------------------------------------------------------------------------------------------- op shapes

    def _int8(self, *indices: int) -> bool:
        return all(self.tensors[i].dtype == "int8" and self.tensors[i].quant is not None
                   and len(self.tensors[i].quant.scales) >= 1 for i in indices)

    def weighted(self, op: Operator) -> bool:
        """A conv / depthwise / dense layer this module understands (int8, symmetric constant weights)."""
        if op.op not in WEIGHTED or len(op.inputs) < 2 or -1 in op.inputs[:2] or not op.outputs:
            return False
        source, weights, result = (self.tensors[i] for i in (op.inputs[0], op.inputs[1], op.outputs[0]))
        if not (weights.is_constant and self._int8(source.index, weights.index, result.index)):
            return False
        if any(weights.quant.zero_points) or len(source.quant.scales) != 1 or len(result.quant.scales) != 1:
            return False
        bias = self.bias(op)
        if bias is not None and (bias.dtype != "int32" or not bias.is_constant):
            return False
        if self.uses.get(weights.index) != 1 or (bias is not None and self.uses.get(bias.index) != 1):
            return False  # constants shared with another op stay as they are
        if op.op == "FULLY_CONNECTED":
            return len(weights.shape) == 2 and op.options.get("weightsFormat", 0) == 0 and \
                weights.shape[1] == source.shape[-1] and result.shape[-1] == weights.shape[0]
        if len(weights.shape) != 4 or len(source.shape) != 4 or len(result.shape) != 4:
            return False
        if op.op == "CONV_2D":
            return weights.shape[3] == source.shape[3] and weights.shape[0] == result.shape[3]
        return weights.shape[0] == 1 and weights.shape[3] == result.shape[3] == source.shape[3]  # multiplier 1

    def passes_through(self, op: Operator) -> bool:
        """Channel c of the output depends on channel c of input 0 only (and the channel counts agree)."""
        if op.op == "DEPTHWISE_CONV_2D":
            return self.weighted(op)
        if op.op in POOLS or op.op == "RESHAPE":
            if not op.outputs or not op.inputs or not self._int8(op.inputs[0], op.outputs[0]):
                return False
            source, result = self.tensors[op.inputs[0]], self.tensors[op.outputs[0]]
            if not source.shape or not result.shape or source.shape[-1] != result.shape[-1]:
                return False
            if op.op == "RESHAPE":  # the rows stay rows: only the leading dimensions change
                return True
            return len(source.shape) == 4 and len(result.shape) == 4 and \
                source.quant == result.quant
        return False

    def bias(self, op: Operator) -> Tensor | None:
        return self.tensors[op.inputs[2]] if len(op.inputs) > 2 and op.inputs[2] != -1 else None

    def channel_weights(self, op: Operator) -> np.ndarray:
        """Weights as [output channel, ..., input channel] (depthwise: [channel, taps])."""
        values = self.tensors[op.inputs[1]].values().astype(np.int64)
        if op.op == "DEPTHWISE_CONV_2D":
            return values.reshape(-1, values.shape[3]).T
        return values

    def requant(self, op: Operator, channel: int) -> tuple[int, int]:
        from tinydeploy.engine.quant import quantize_multiplier

        scales = self.tensors[op.inputs[1]].quant.scales
        scale = scales[channel] if len(scales) > 1 else scales[0]
        source, result = self.tensors[op.inputs[0]], self.tensors[op.outputs[0]]
        return quantize_multiplier(float(source.quant.scales[0]) * float(scale) / float(result.quant.scales[0]))

    def clamp(self, op: Operator) -> tuple[int, int]:
        from tinydeploy.engine.quant import activation_range

        result = self.tensors[op.outputs[0]]
        return activation_range(op.activation, result.quant.scales[0], result.quant.zero_points[0])

    def output_value(self, op: Operator, channel: int, acc: int) -> int:
        multiplier, shift = self.requant(op, channel)
        low, high = self.clamp(op)
        return min(max(_requantize(acc, multiplier, shift) + self.tensors[op.outputs[0]].quant.zero_points[0],
                       low), high)

    def untouched_by_padding(self, op: Operator) -> bool:
        """Every window of this sliding-window op lies inside its input."""
        from tinydeploy.engine.ops.common import leading_padding

        source, result = self.tensors[op.inputs[0]], self.tensors[op.outputs[0]]
        if op.op == "FULLY_CONNECTED":
            return True
        options = op.options
        if op.op in POOLS:
            fh, fw = options.get("filterHeight", 1), options.get("filterWidth", 1)
        else:
            _, fh, fw, _ = self.tensors[op.inputs[1]].shape
        sh, sw = options.get("strideH", 1), options.get("strideW", 1)
        dh, dw = options.get("dilationHFactor", 1), options.get("dilationWFactor", 1)
        _, in_h, in_w, _ = source.shape
        _, out_h, out_w, _ = result.shape
        return (leading_padding(in_h, fh, sh, dh, out_h) == 0 and leading_padding(in_w, fw, sw, dw, out_w) == 0
                and (out_h - 1) * sh + (fh - 1) * dh < in_h and (out_w - 1) * sw + (fw - 1) * dw < in_w)

    # ----------------------------------------------------------------------------------------- analysis

    def forward_constants(self) -> dict[int, dict[int, int]]:
        """tensor -> {channel: the int8 value it holds at every position} for the channels known constant."""
        constants: dict[int, dict[int, int]] = {}
        for op in self.model.operators:
            if op.op in WEIGHTED and self.weighted(op):
                weights = self.channel_weights(op)
                bias = self.bias(op)
                biases = bias.values().reshape(-1).astype(np.int64) if bias is not None else \
                    np.zeros(weights.shape[0], np.int64)
                zeros = np.flatnonzero(np.abs(weights.reshape(weights.shape[0], -1)).sum(axis=1) == 0)
                found = {int(c): self.output_value(op, int(c), int(biases[c])) for c in zeros}
                if op.op == "DEPTHWISE_CONV_2D":
                    source = self.tensors[op.inputs[0]]
                    zero_point = source.quant.zero_points[0]
                    exact_everywhere = self.untouched_by_padding(op)
                    for c, value in constants.get(op.inputs[0], {}).items():
                        if c not in found and (value == zero_point or exact_everywhere):
                            acc = int(biases[c]) + (value - zero_point) * int(weights[c].sum())
                            if INT32_MIN <= acc <= INT32_MAX:
                                found[c] = self.output_value(op, c, acc)
                if found:
                    constants[op.outputs[0]] = found
            elif op.op in POOLS and self.passes_through(op):
                low, high = self.clamp(op)
                carried = {c: min(max(v, low), high) for c, v in constants.get(op.inputs[0], {}).items()}
                if carried:
                    constants[op.outputs[0]] = carried
            elif op.op == "RESHAPE" and self.passes_through(op) and op.inputs[0] in constants:
                constants[op.outputs[0]] = dict(constants[op.inputs[0]])
        return constants

    def components(self) -> dict[int, int]:
        """tensor -> representative: tensors linked by ops that pass channels through share channel indices."""
        parent: dict[int, int] = {}

        def find(t: int) -> int:
            parent.setdefault(t, t)
            while parent[t] != t:
                parent[t] = parent[parent[t]]
                t = parent[t]
            return t

        for op in self.model.operators:
            for t in list(op.inputs[:1]) + list(op.outputs[:1]):
                if t != -1:
                    find(t)
            if self.passes_through(op):
                parent[find(op.outputs[0])] = find(op.inputs[0])
        return {t: find(t) for t in parent}

    def absorbs(self, op: Operator, tensor: int, channel: int, constants: dict[int, dict[int, int]]) -> bool:
        """Whether `op`, reading `tensor` as its input 0 at the end of a chain, gives the same result without
        that channel (once its constant, if any, is folded into the bias)."""
        if op.op not in ("CONV_2D", "FULLY_CONNECTED") or not self.weighted(op) or op.inputs[0] != tensor or \
                tensor in op.inputs[1:]:
            return False
        weights = self.tensors[op.inputs[1]].values()
        column = weights[..., channel]
        if not column.any():
            return True  # the channel is multiplied by zero everywhere
        value = constants.get(tensor, {}).get(channel)
        if value is None:
            return False
        zero_point = self.tensors[tensor].quant.zero_points[0]
        return value == zero_point or self.untouched_by_padding(op)

    def folds_fit(self, op: Operator, tensor: int, channels: set[int], constants: dict[int, dict[int, int]]) -> bool:
        """Whether the bias of `op` stays int32 with the constants of `channels` folded in."""
        weights = self.tensors[op.inputs[1]].values().astype(np.int64)
        bias = self.bias(op)
        biases = bias.values().reshape(-1).astype(np.int64) if bias is not None else np.zeros(weights.shape[0], np.int64)
        zero_point = self.tensors[tensor].quant.zero_points[0]
        known = constants.get(tensor, {})
        for c in channels:
            column = weights[..., c].reshape(weights.shape[0], -1).sum(axis=1)
            if c in known and known[c] != zero_point and column.any():
                if bias is None:
                    return False  # nowhere to fold into
                biases = biases + (known[c] - zero_point) * column
        return bool(biases.min(initial=0) >= INT32_MIN and biases.max(initial=0) <= INT32_MAX)

    def droppable(self, constants: dict[int, dict[int, int]]) -> dict[int, set[int]]:
        """tensor -> channels to remove, decided per group (a component's channel) all or nothing."""
        component = self.components()
        members: dict[int, list[int]] = {}
        for t, root in component.items():
            members.setdefault(root, []).append(t)
        dropped: dict[int, set[int]] = {t: set() for t in component}
        for root, tensors in members.items():
            if any(t in self.boundary or self.tensors[t].is_constant or not self.tensors[t].shape for t in tensors):
                continue
            producers = [self.producer.get(t) for t in tensors]
            if any(p is None or not (self.weighted(p) or self.passes_through(p)) for p in producers):
                continue
            channels = self.tensors[tensors[0]].shape[-1]
            ends = [(t, op) for t in tensors for op in self.consumers.get(t, [])
                    if not (self.passes_through(op) and component.get(op.outputs[0]) == root)]
            if not ends:
                continue  # nobody reads the chain: leave it (a graph without consumers is not ours to trim)
            chosen = {c for c in range(channels) if all(self.absorbs(op, t, c, constants) for t, op in ends)}
            if len(chosen) == channels:
                chosen.discard(min(chosen))  # a tensor keeps at least one channel
            if chosen and not all(self.folds_fit(op, t, chosen, constants) for t, op in ends):
                chosen = set()
            for t in tensors:
                dropped[t] = set(chosen)
        return dropped

    # ------------------------------------------------------------------------------------------ rewriting

    def rewrite(self, dropped: dict[int, set[int]], constants: dict[int, dict[int, int]]) \
            -> tuple[TfliteModel, Pruning]:
        from tinydeploy.analysis.compute import op_macs

        tensors = list(self.tensors)
        report = Pruning()
        for t, channels in dropped.items():
            if channels:
                old = tensors[t]
                tensors[t] = dataclasses.replace(old, shape=tuple(old.shape[:-1]) + (old.shape[-1] - len(channels),))
        for op in self.model.operators:
            if not self.weighted(op):
                continue
            out_drop = sorted(dropped.get(op.outputs[0], ()))
            in_drop = sorted(dropped.get(op.inputs[0], ())) if op.op != "DEPTHWISE_CONV_2D" else []
            if not out_drop and not in_drop:
                continue
            weights, bias = self.tensors[op.inputs[1]], self.bias(op)
            values = weights.values().astype(np.int64)
            biases = bias.values().reshape(-1).astype(np.int64) if bias is not None else None
            folded = 0
            if in_drop:
                zero_point = self.tensors[op.inputs[0]].quant.zero_points[0]
                known = constants.get(op.inputs[0], {})
                for c in in_drop:
                    column = values[..., c].reshape(values.shape[0], -1).sum(axis=1)
                    if c in known and known[c] != zero_point and column.any():
                        if biases is None:
                            biases = np.zeros(values.shape[0], np.int64)
                        biases = biases + (known[c] - zero_point) * column
                        folded += 1
                if biases is not None and (biases.min() < INT32_MIN or biases.max() > INT32_MAX):
                    raise AssertionError("a folded bias left int32; absorbs() must have refused it")
                values = np.delete(values, in_drop, axis=-1)
            channel_axis = 3 if op.op == "DEPTHWISE_CONV_2D" else 0
            if out_drop:
                values = np.delete(values, out_drop, axis=channel_axis)
                if biases is not None:
                    biases = np.delete(biases, out_drop)
            tensors[weights.index] = _with_values(weights, values.astype(np.int8), out_drop, channel_axis)
            if bias is not None:
                tensors[bias.index] = _with_values(bias, biases.astype(np.int32), out_drop, 0)
            elif biases is not None:
                raise AssertionError("constants folded into a layer without a bias")
            report.ops.append(OpPruning(op.index, op.op, len(out_drop), len(in_drop), folded,
                                        bytes_removed=(weights.nbytes - tensors[weights.index].nbytes) + (
                                            0 if bias is None else bias.nbytes - tensors[bias.index].nbytes)
                                        + 8 * len(out_drop)))  # the multiplier and shift of each removed channel
        for op in self.model.operators:
            if op.op in POOLS and any(dropped.get(t) for t in op.outputs[:1]) and report.for_op(op.index) is None:
                report.ops.append(OpPruning(op.index, op.op, len(dropped[op.outputs[0]]),
                                            len(dropped[op.inputs[0]])))
        # A tensor whose only uses left the graph is kept (an empty constant would read as a computed tensor).
        pruned = dataclasses.replace(self.model, tensors=tensors)
        pruned.__dict__.pop("sha256", None)
        pruned.__dict__["sha256"] = self.model.sha256  # the same model, computed more cheaply
        for entry in report.ops:
            op = self.model.operators[entry.op_index]
            entry.macs_removed = op_macs(self.model, op) - op_macs(pruned, op)
        report.ops.sort(key=lambda entry: entry.op_index)
        return pruned, report


def _with_values(tensor: Tensor, values: np.ndarray, removed: list[int], channel_axis: int) -> Tensor:
    """The constant tensor with new values; per-channel scales of removed output channels dropped too."""
    quant = tensor.quant
    if quant is not None and len(quant.scales) > 1 and removed:
        keep = [i for i in range(len(quant.scales)) if i not in set(removed)]
        zero_points = [quant.zero_points[i] for i in keep] if len(quant.zero_points) == len(quant.scales) \
            else list(quant.zero_points)
        quant = dataclasses.replace(quant, scales=tuple(quant.scales[i] for i in keep),
                                    zero_points=tuple(zero_points))
    data = np.frombuffer(values.astype(values.dtype.newbyteorder("<")).tobytes(), dtype=np.uint8).copy()
    return dataclasses.replace(tensor, shape=tuple(values.shape), data=data, quant=quant)
