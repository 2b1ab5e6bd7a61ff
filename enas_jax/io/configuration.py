"""ConfigDict sections -> frozen dataclasses, with clear errors for unknown or mistyped fields.

Modules take frozen dataclasses, never a ConfigDict: the conversion at the boundary is where a
user's typo (`--config.model.hiden_dim=...`) or a wrong type (`--config.data.bptt=ten`) is
caught and explained.
"""
from __future__ import annotations

import dataclasses
import math
import typing
from typing import Any, Mapping, Type, TypeVar

from enas_jax.io.errors import UserError

T = TypeVar("T")


def has_kind(value: Any, kind: type | tuple[type, ...]) -> bool:
  """`isinstance(value, kind)`, except that a bool is never an int or a float: JSON's `true` is
  not the number 1 (Python's bool is an int)."""
  return isinstance(value, kind) and not isinstance(value, bool)


def _dotted(section: str, name: str) -> str:
  """`section.name`, or just `name` at the top level (section "")."""
  return f"{section}.{name}" if section else name


def _check_value(section: str, name: str, value: Any, annotation: Any) -> Any:
  """Returns `value` coerced to the annotated type, or raises a UserError naming the field."""
  field = _dotted(section, name)
  origin = typing.get_origin(annotation)
  args = typing.get_args(annotation)
  if origin is typing.Union:  # Optional[X] and friends.
    if value is None and type(None) in args:
      return None
    candidates = [a for a in args if a is not type(None)]
    for candidate in candidates:
      try:
        return _check_value(section, name, value, candidate)
      except UserError:
        continue
    raise UserError(
        f"Config field `{field}` has value {value!r} of type {type(value).__name__}, "
        f"expected {annotation}. Fix the value in the config file or the --config.{field} "
        f"override.")
  if origin is typing.Literal:
    if value in args:
      return value
    raise UserError(
        f"Config field `{_dotted(section, name)}` is {value!r}; it must be one of {list(args)}. "
        f"Fix the value in the config file or the --config.{_dotted(section, name)} override.")
  if origin in (tuple, list):
    if isinstance(value, (tuple, list)):
      return tuple(value)
  elif annotation is float and has_kind(value, (int, float)):
    if not math.isfinite(value):  # an inf rate makes every step non-finite; no field means it
      raise UserError(f"Config field `{field}` is {value!r}; it must be a finite number. Fix "
                      f"the value in the config file or the --config.{field} override.")
    return float(value)
  elif annotation is int and has_kind(value, int):
    if not -2 ** 63 <= value < 2 ** 63:  # what NumPy and JAX take (a seed beyond: OverflowError)
      raise UserError(f"Config field `{field}` is {value}, beyond a 64-bit integer's range. Fix "
                      f"the value in the config file or the --config.{field} override.")
    return value
  elif annotation is bool and isinstance(value, bool):
    return value
  elif annotation is str and isinstance(value, str):
    return value
  elif annotation is Any:
    return value
  elif dataclasses.is_dataclass(annotation):
    if isinstance(value, annotation):
      return value
    if hasattr(value, "to_dict") or isinstance(value, Mapping):
      return from_section(annotation, _dotted(section, name), value)
  raise UserError(
      f"Config field `{field}` has value {value!r} of type {type(value).__name__}, but "
      f"it must be {getattr(annotation, '__name__', annotation)}. Fix the value in the config "
      f"file or the --config.{_dotted(section, name)} override.")


def from_section(cls: Type[T], section: str, values: Mapping[str, Any]) -> T:
  """Builds the frozen dataclass `cls` from a config section, checking names and types.

  Args:
    cls: a dataclass whose fields (with type hints) define the section's schema.
    section: the section's dotted name in the config, used in error messages.
    values: the section (a ConfigDict or a plain mapping).

  Raises:
    UserError: for a field the dataclass does not know, a missing required field or a wrong type.
  """
  if hasattr(values, "to_dict"):
    values = values.to_dict()
  if not isinstance(values, Mapping):  # a damaged config.json: was a TypeError traceback
    raise UserError(f"Config section `{section or 'config'}` must be a group of fields, got "
                    f"{values!r}.")
  hints = typing.get_type_hints(cls)
  fields = {f.name: f for f in dataclasses.fields(cls)}
  unknown = sorted(set(values) - set(fields))
  if unknown:
    raise UserError(
        f"Unknown config field(s) {', '.join(f'`{_dotted(section, u)}`' for u in unknown)}. The "
        f"section `{section or 'config'}` accepts: {', '.join(sorted(fields))}. Check the spelling "
        f"in the config file "
        f"or the --config override.")
  kwargs = {}
  for name, field in fields.items():
    if name not in values:
      if field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING:
        raise UserError(f"Config field `{_dotted(section, name)}` is missing; add it to the "
                        f"config file.")
      continue
    kwargs[name] = _check_value(section, name, values[name], hints[name])
  instance = cls(**kwargs)
  validate = getattr(instance, "validate", None)
  if validate is not None:
    validate(section)
  return instance


INT32_END = 2 ** 31  # the first count JAX's int32 indices and shapes cannot hold

# The ranges `require` checks: rule -> (test, the words of the error).
_RULES = {">= 1": (lambda v: v >= 1, "at least 1"), ">= 0": (lambda v: v >= 0, ">= 0"),
          "> 0": (lambda v: v > 0, "positive"), "[0, 1)": (lambda v: 0 <= v < 1, "in [0, 1)"),
          "seed": (lambda v: v >= 0, "non-negative (NumPy's generators, which order the data, "
                                     "take no negative seed)")}


def require(cfg: Any, section: str, rule: str, *names: str) -> None:
  """The one range check of config fields: raises a UserError naming the first field of `names`
  in `cfg` that breaks `rule`: ">= 1" (a count or size), ">= 0", "> 0" (a rate or scale),
  "[0, 1)" (a fraction or decay), "seed" (any integer from 0). An integer under ">= 1" or
  ">= 0" must also be below 2**31: JAX's programs hold counts, sizes and indices as int32
  (larger: an OverflowError traceback)."""
  test, words = _RULES[rule]
  for name in names:
    value = getattr(cfg, name)
    # a count, size or index past what JAX holds
    too_big = has_kind(value, int) and rule in (">= 1", ">= 0") and value >= INT32_END
    if not test(value) or too_big:
      field = _dotted(section, name)
      below = f" and below 2**31 ({INT32_END:,}: JAX counts in 32 bits)" if too_big else ""
      raise UserError(f"Config field `{field}` must be {words}{below}, got {value!r}. Fix it in "
                      f"the config file or the --config.{field} override.")
