"""Export the ABIs of the compiled contracts to ``deployments/abi/<Contract>.json``.

Reads ape's build manifest (``.build/__local__.json``, written by ``ape compile``); the files
are plain ABI arrays, generated, never edited by hand. Mocks under ``contracts/mocks/`` are
left out.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
MANIFEST = ROOT / ".build" / "__local__.json"
OUT_DIR = ROOT / "deployments" / "abi"


def load_abis(manifest: Path = MANIFEST) -> dict[str, list[dict[str, Any]]]:
    """Contract name → ABI for every compiled contract of the project except mocks."""
    if not manifest.exists():
        raise FileNotFoundError(f"{manifest} is missing: run `ape compile` first")
    data = json.loads(manifest.read_text())
    abis: dict[str, list[dict[str, Any]]] = {}
    for name, contract_type in data.get("contractTypes", {}).items():
        source = str(contract_type.get("sourceId", ""))
        if "/mocks/" in source or source.startswith("mocks/"):
            continue
        abi = contract_type.get("abi") or []
        if abi:
            abis[name] = abi
    return abis


def export_abis(out_dir: Path = OUT_DIR, manifest: Path = MANIFEST) -> dict[str, Path]:
    """Write one ``<Contract>.json`` per contract; return name → path written."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written: dict[str, Path] = {}
    for name, abi in sorted(load_abis(manifest).items()):
        path = out_dir / f"{name}.json"
        text = json.dumps(abi, indent=1, sort_keys=True) + "\n"
        if not path.exists() or path.read_text() != text:
            path.write_text(text)
        written[name] = path
    return written


def main() -> int:
    try:
        written = export_abis()
    except FileNotFoundError as exc:
        print(exc, file=sys.stderr)
        return 1
    print(f"exported {len(written)} ABIs to {OUT_DIR.relative_to(ROOT)}/")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
