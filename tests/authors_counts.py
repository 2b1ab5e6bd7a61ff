"""Parameter counts of the authors' final-training networks, transcribed from their TF1 code
(melodyguan/enas at 00787a5, `src/cifar10/general_child.py` and `micro_child.py`, fixed-arc
paths) as plain arithmetic: a reference that shares nothing with our Flax networks. Trainable
variables only (batch norm's offset and scale count, its moving averages do not), as their
`count_model_params` counts them. Every term names the code it comes from.
"""
from typing import Sequence


def _bn(c: int) -> int:  # image_ops.batch_norm: offset and scale
  return 2 * c


def _factorized_reduction(c_in: int, c_out: int) -> int:  # two 1x1 convs c_in -> c_out/2, BN
  return 2 * c_in * (c_out // 2) + _bn(c_out)


def macro(arc: Sequence[int], num_layers: int, filters: int, num_classes: int = 10,
          separable_as_conv: bool = True, skips_by_concat: bool = True) -> dict[str, int]:
  """general_child.py with `whole_channels` and a fixed arc, by part. The two switches turn
  the code's choices into the paper's (False): separable ops built as full k x k convs
  (`_fixed_layer`: `size = [3, 3, 5, 5]`, one conv path for ops 0-3) and skip connections as a
  concatenation followed by ReLU, a 1 x 1 conv and BN (`_fixed_layer`, scope "skip"). At each
  pooling layer every earlier output, the stem's included, gets its own factorized reduction
  (`_model`, "pool_at_{k}"), used later or not."""
  parts = {"stem": 3 * 3 * 3 * filters + _bn(filters)}  # stem_conv
  pool_distance = num_layers // 3
  pool_layers = [pool_distance - 1, 2 * pool_distance - 1]
  c, pos = filters, 0
  for k in range(num_layers):
    op, skips = arc[pos], arc[pos + 1:pos + 1 + k]
    pos += 1 + k
    size = (3, 3, 5, 5)[op]
    parts["op 1x1"] = parts.get("op 1x1", 0) + c * c + _bn(c)  # conv_1x1
    kxk = (size * size * c + c * c) if (op in (1, 3) and not separable_as_conv) else (
        size * size * c * c)
    parts["op kxk"] = parts.get("op kxk", 0) + kxk + _bn(c)  # conv_{k}x{k}
    if k > 0:
      concat = (sum(skips) + 1) * c * c if skips_by_concat else 0
      parts["skip"] = parts.get("skip", 0) + concat + _bn(c)  # skip: 1x1 conv (or sum) + BN
    if k in pool_layers:
      parts["reductions"] = parts.get("reductions", 0) + (k + 2) * _factorized_reduction(
          c, 2 * c)
      c *= 2
  parts["fc"] = c * num_classes  # fc: w only, no bias
  return parts


def _sep_stack(size: int, c_in: int, c_out: int) -> int:  # _fixed_conv: 2 separable convs
  first = size * size * c_in + c_in * c_out + _bn(c_out)
  return first + size * size * c_out + c_out * c_out + _bn(c_out)


def _fixed_cell(prev: list[tuple[int, int]], arc: Sequence[int], filters: int, stride: int,
                num_cells: int, parts: dict[str, int]) -> tuple[int, int]:
  """micro_child.py `_fixed_layer` of one cell; `prev` (size, channels) of its two inputs;
  returns its output's (size, channels)."""
  def add(key: str, n: int) -> None:
    parts[key] = parts.get(key, 0) + n

  (hw0, c0), (hw1, c1) = prev
  if hw0 != hw1:  # _maybe_calibrate_size: pool_x
    add("calibrate", _factorized_reduction(c0, filters))
  elif c0 != filters:
    add("calibrate", c0 * filters + _bn(filters))
  if c1 != filters:  # pool_y
    add("calibrate", c1 * filters + _bn(filters))
  add("layer_base", filters * filters + _bn(filters))  # layer_base: 1x1 conv of input 1
  nodes = [(hw1, filters), (hw1, filters)]
  used = [0] * (num_cells + 2)
  for cell in range(num_cells):
    sizes = []
    for side in (0, 1):
      i, op = arc[4 * cell + 2 * side], arc[4 * cell + 2 * side + 1]
      used[i] += 1
      s = stride if i in (0, 1) else 1
      size, c = nodes[i]
      if op in (0, 1):  # x_conv / y_conv: _fixed_conv, 3x3 or 5x5
        add("separable convs", _sep_stack((3, 5)[op], c, filters))
      elif op == 4 and s > 1:  # identity from a cell input in a reduction cell
        add("identity reductions", _factorized_reduction(c, filters))
      sizes.append(size // s)  # pools (2, 3) add no weights: their inputs have `filters`
    nodes.append((min(sizes), filters))
  out_size = min(nodes[i][0] for i in range(num_cells + 2) if not used[i])
  loose = [i for i in range(num_cells + 2) if not used[i]]
  for i in loose:  # _fixed_combine: calibrate_{i}
    if nodes[i][0] > out_size:
      add("combine reductions", _factorized_reduction(nodes[i][1], filters))
  return out_size, len(loose) * filters


def micro(arc: Sequence[int], num_layers: int, filters: int, num_cells: int = 5,
          num_classes: int = 10, image_size: int = 32) -> dict[str, int]:
  """micro_child.py with a fixed arc (normal cell's 4B integers, then the reduction cell's) and
  `use_aux_heads`, by part."""
  normal, reduce = arc[:4 * num_cells], arc[4 * num_cells:]
  parts = {"stem": 3 * 3 * 3 * 3 * filters + _bn(3 * filters)}  # stem_conv: 3F channels
  pool_distance = num_layers // 3
  pool_layers = [pool_distance, 2 * pool_distance + 1]
  prev = [(image_size, 3 * filters), (image_size, 3 * filters)]
  c = filters
  for layer in range(num_layers + 2):
    reduction = layer in pool_layers
    c = 2 * c if reduction else c
    out = _fixed_cell(prev, reduce if reduction else normal, c, 2 if reduction else 1,
                      num_cells, parts)
    prev = [prev[1], out]
    if layer == pool_layers[-1] + 1:  # aux_head: avg-pool 5/3, 1x1 to 128, conv to 768, fc
      size = (out[0] - 5) // 3 + 1
      parts["aux head"] = (out[1] * 128 + _bn(128) + size * size * 128 * 768 + _bn(768)
                           + 768 * num_classes)
  parts["fc"] = prev[1][1] * num_classes  # fc: w only
  return parts
