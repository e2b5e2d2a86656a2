"""Command-line text to ABI values, for ``oml dev send-as``; and human amounts and durations."""

from __future__ import annotations

import json
import re
from decimal import Decimal, InvalidOperation
from typing import Any

from web3 import Web3

from agents.dev.errors import DevError

_DURATION = re.compile(r"^(\d+)\s*([smhdw]?)$")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_duration(text: str) -> int:
    """``90``, ``90s``, ``15m``, ``2h``, ``1d``, ``1w`` → seconds."""
    match = _DURATION.match(text.strip().lower())
    if not match:
        raise DevError(f"cannot read {text!r} as a duration: use e.g. 90, 15m, 2h, 1d")
    return int(match.group(1)) * _UNITS[match.group(2)]


def parse_amount(text: str, decimals: int) -> int:
    """``1.5`` (whole units, decimals allowed) → base units."""
    try:
        value = Decimal(text.replace("_", ""))
    except InvalidOperation as error:
        raise DevError(f"cannot read {text!r} as an amount") from error
    units = value * (Decimal(10) ** decimals)
    if value < 0 or units != units.to_integral_value():
        raise DevError(f"{text} is negative or finer than {decimals} decimals")
    return int(units)


def coerce(abi_type: str, value: Any, components: list[dict[str, Any]] | None = None) -> Any:
    """Turn command-line text (or an element of a JSON array) into a value of ``abi_type``."""
    if abi_type.endswith("]"):
        items = json.loads(value) if isinstance(value, str) else value
        if not isinstance(items, list):
            raise DevError(f"{abi_type} needs a JSON array, got {value!r}")
        inner = abi_type[: abi_type.rindex("[")]
        return [coerce(inner, item, components) for item in items]
    if abi_type == "tuple":
        fields = json.loads(value) if isinstance(value, str) else value
        parts = components or []
        if isinstance(fields, dict):
            fields = [fields[c["name"]] for c in parts]
        if not isinstance(fields, list) or len(fields) != len(parts):
            raise DevError(f"a struct of {len(parts)} fields needs a JSON array or object")
        return tuple(
            coerce(c["type"], f, c.get("components")) for c, f in zip(parts, fields, strict=True)
        )
    text = (
        value
        if isinstance(value, str)
        else json.dumps(value)
        if isinstance(value, bool)
        else str(value)
    )
    try:
        if abi_type.startswith(("uint", "int")):
            return int(text.replace("_", ""), 0)
        if abi_type == "address":
            return Web3.to_checksum_address(text)
        if abi_type == "bool":
            if text.lower() not in {"true", "false", "1", "0"}:
                raise DevError(f"a bool is true or false, got {text!r}")
            return text.lower() in {"true", "1"}
        if abi_type.startswith("bytes"):
            return bytes.fromhex(text.removeprefix("0x"))
    except ValueError as error:
        raise DevError(f"cannot read {text!r} as {abi_type}: {error}") from error
    return text


def find_function(abi: list[dict[str, Any]], name: str, arg_count: int) -> dict[str, Any]:
    candidates = [i for i in abi if i.get("type") == "function" and i.get("name") == name]
    if not candidates:
        known = sorted({str(i["name"]) for i in abi if i.get("type") == "function"})
        raise DevError(f"no function {name}; the contract has: {', '.join(known)}")
    for item in candidates:
        if len(item.get("inputs", [])) == arg_count:
            return item
    shapes = "; ".join(
        f"{name}({', '.join(i['type'] + ' ' + i.get('name', '') for i in c['inputs'])})"
        for c in candidates
    )
    raise DevError(f"{name} takes other arguments than the {arg_count} given: {shapes}")


def coerce_args(function: dict[str, Any], args: tuple[str, ...]) -> list[Any]:
    return [
        coerce(spec["type"], text, spec.get("components"))
        for spec, text in zip(function.get("inputs", []), args, strict=True)
    ]
