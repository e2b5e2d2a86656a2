"""`oml storage ...`: add, get, publish, fetch, pin, unpin and stat against an IPFS node.

Every command verifies what it reads against CIDs computed locally. ``--json`` prints one JSON
object on stdout for scripts; progress bars go to stderr (only on a terminal).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import click
from tqdm import tqdm

from agents.storage.client import IpfsClient
from agents.storage.errors import StorageError
from agents.storage.keys import load_keystore, normalize_public_key
from agents.storage.models import fetch_model, publish_model
from agents.storage.settings import get_storage_settings

F = TypeVar("F", bound=Callable[..., Any])


def _json_option(func: F) -> F:
    return click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")(func)


def _emit(as_json: bool, payload: dict[str, Any], text: str) -> None:
    click.echo(json.dumps(payload, sort_keys=True) if as_json else text)


@contextmanager
def _client(ctx: click.Context) -> Iterator[IpfsClient]:
    options = ctx.obj or {}
    try:
        with IpfsClient(options.get("api_url"), timeout_s=options.get("timeout")) as client:
            yield client
    except StorageError as error:
        raise click.ClickException(str(error)) from error


def _show_progress(as_json: bool) -> bool:
    return not as_json and sys.stderr.isatty()


@click.group("storage")
@click.option("--api-url", default=None, help="IPFS RPC API URL (default: $OML_IPFS_API_URL).")
@click.option(
    "--timeout",
    type=float,
    default=None,
    help="Seconds to wait for content (default: $OML_IPFS_TIMEOUT_S).",
)
@click.pass_context
def group(ctx: click.Context, api_url: str | None, timeout: float | None) -> None:
    """Store models on IPFS: every byte fetched is checked against its CID locally.

    \b
      oml storage add weights.safetensors --json        {"cid": "Qm..."}
      oml storage publish ./my-model --encrypt-to 0x<128 hex digits>
      oml storage fetch <manifest-cid> ./copy --keystore host.json
    """
    ctx.obj = {"api_url": api_url, "timeout": timeout}


@group.command()
@click.argument("path", type=click.Path(exists=True, path_type=Path))
@click.option(
    "--cid-version",
    type=click.IntRange(0, 1),
    default=0,
    show_default=True,
    help="0: dag-pb leaves (Qm...); 1: raw leaves, base32 (bafy...).",
)
@click.option("--no-pin", is_flag=True, help="Do not pin on the node.")
@_json_option
@click.pass_context
def add(ctx: click.Context, path: Path, cid_version: int, no_pin: bool, as_json: bool) -> None:
    """Add a file or a directory; print its CID (checked against a local computation)."""
    with _client(ctx) as client:
        if path.is_dir():
            cid = client.add_dir(path, cid_version=cid_version, pin=not no_pin)
            kind = "directory"
        else:
            size = path.stat().st_size
            with tqdm(
                total=size,
                unit="B",
                unit_scale=True,
                desc="add",
                leave=False,
                disable=not _show_progress(as_json),
            ) as bar:
                cid = client.add_file(
                    path, cid_version=cid_version, pin=not no_pin, progress=bar.update
                )
            kind = "file"
    _emit(as_json, {"cid": cid, "path": str(path), "type": kind, "pinned": not no_pin}, cid)


@group.command()
@click.argument("cid")
@click.argument("out", type=click.Path(path_type=Path))
@_json_option
@click.pass_context
def get(ctx: click.Context, cid: str, out: Path, as_json: bool) -> None:
    """Fetch CID (file or directory) into OUT; nothing is written unless it verifies."""
    with (
        _client(ctx) as client,
        tqdm(
            unit="B", unit_scale=True, desc="get", leave=False, disable=not _show_progress(as_json)
        ) as bar,
    ):
        kind = client.get(cid, out, progress=bar.update)
    _emit(
        as_json,
        {"cid": cid, "path": str(out), "type": kind, "verified": True},
        f"{cid} -> {out} ({kind}, verified)",
    )


def _parse_parent(value: str) -> dict[str, int]:
    try:
        model_id, version = value.split(":")
        return {"model_id": int(model_id), "version": int(version)}
    except ValueError as error:
        raise click.BadParameter(f"{value!r}: expected MODEL_ID:VERSION, e.g. 3:0") from error


@group.command()
@click.argument("directory", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option(
    "--encrypt-to",
    "encrypt_to",
    default=None,
    metavar="PUBKEY",
    help="Recipient's 64-byte secp256k1 public key, hex (0x optional).",
)
@click.option("--name", default=None, help="Model name (default: the folder's name).")
@click.option("--license", "license_", default=None, help="License identifier, e.g. apache-2.0.")
@click.option(
    "--parent",
    "parents",
    multiple=True,
    metavar="MODEL_ID:VERSION",
    help="A parent in the family tree; repeat for several.",
)
@click.option(
    "--fingerprint-scheme",
    default=None,
    metavar="JSON",
    help="Fingerprint scheme parameters (JSON object; never keys).",
)
@click.option("--cid-version", type=click.IntRange(0, 1), default=0, show_default=True)
@_json_option
@click.pass_context
def publish(
    ctx: click.Context,
    directory: Path,
    encrypt_to: str | None,
    name: str | None,
    license_: str | None,
    parents: tuple[str, ...],
    fingerprint_scheme: str | None,
    cid_version: int,
    as_json: bool,
) -> None:
    """Upload a Hugging Face-style model folder and its manifest; print the manifest CID."""
    fields: dict[str, Any] = {}
    if name:
        fields["name"] = name
    if license_:
        fields["license"] = license_
    if parents:
        fields["parents"] = [_parse_parent(p) for p in parents]
    if fingerprint_scheme:
        try:
            fields["fingerprint_scheme"] = json.loads(fingerprint_scheme)
        except ValueError as error:
            raise click.BadParameter(
                f"not JSON: {error}", param_hint="--fingerprint-scheme"
            ) from error
    recipient = None
    if encrypt_to:
        try:
            recipient = normalize_public_key(encrypt_to)
        except StorageError as error:
            raise click.BadParameter(str(error), param_hint="--encrypt-to") from error
    with _client(ctx) as client:
        ref = publish_model(
            client,
            directory,
            recipient,
            manifest_fields=fields,
            cid_version=cid_version,
            progress=_show_progress(as_json),
        )
    payload = {
        "cid": ref.cid,
        "name": ref.manifest.name,
        "files": len(ref.manifest.files),
        "size": ref.manifest.total_size,
        "encrypted": ref.manifest.encryption is not None,
    }
    _emit(as_json, payload, ref.cid)


@group.command()
@click.argument("cid")
@click.argument("directory", type=click.Path(path_type=Path))
@click.option(
    "--keystore",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="eth-account keystore of the recipient (encrypted models).",
)
@click.option(
    "--password-env",
    default=None,
    metavar="VAR",
    help="Environment variable with the keystore password "
    "(default: $OML_STORAGE_KEYSTORE_PASSWORD_ENV, i.e. OML_KEYSTORE_PASSWORD).",
)
@_json_option
@click.pass_context
def fetch(
    ctx: click.Context,
    cid: str,
    directory: Path,
    keystore: Path | None,
    password_env: str | None,
    as_json: bool,
) -> None:
    """Restore the model at manifest CID into DIRECTORY (new), verified and decrypted."""
    try:
        key = None
        if keystore is not None:
            env = password_env or get_storage_settings().keystore_password_env
            key = load_keystore(keystore, password_env=env)
    except StorageError as error:
        raise click.ClickException(str(error)) from error
    with _client(ctx) as client:
        manifest = fetch_model(client, cid, directory, key, progress=_show_progress(as_json))
    payload = {
        "cid": cid,
        "path": str(directory),
        "name": manifest.name,
        "files": len(manifest.files),
        "size": manifest.total_size,
        "verified": True,
    }
    _emit(as_json, payload, f"{cid} -> {directory} ({len(manifest.files)} files, verified)")


@group.command()
@click.argument("cid")
@_json_option
@click.pass_context
def pin(ctx: click.Context, cid: str, as_json: bool) -> None:
    """Pin CID recursively on the node."""
    with _client(ctx) as client:
        client.pin(cid)
    _emit(as_json, {"cid": cid, "pinned": True}, f"pinned {cid}")


@group.command()
@click.argument("cid")
@_json_option
@click.pass_context
def unpin(ctx: click.Context, cid: str, as_json: bool) -> None:
    """Remove the recursive pin of CID."""
    with _client(ctx) as client:
        client.unpin(cid)
    _emit(as_json, {"cid": cid, "pinned": False}, f"unpinned {cid}")


@group.command()
@click.argument("cid")
@_json_option
@click.pass_context
def stat(ctx: click.Context, cid: str, as_json: bool) -> None:
    """What the node says about CID: type, size, pinned."""
    with _client(ctx) as client:
        info = client.stat(cid)
        pinned = client.is_pinned(cid)
    payload = {**info, "pinned": pinned}
    _emit(as_json, payload, "\n".join(f"{key}: {value}" for key, value in payload.items()))
