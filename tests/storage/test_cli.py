"""`oml storage ...` end to end against the real node, through the real `oml` entry point."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from eth_account import Account

from agents.cli import cli
from agents.storage.unixfs import cid_of_bytes


def oml(*args: str, env: dict[str, str] | None = None, ok: bool = True) -> Any:
    result = CliRunner().invoke(cli, ["storage", *args], env=env, catch_exceptions=False)
    if ok:
        assert result.exit_code == 0, result.output
        return json.loads(result.stdout) if "--json" in args else result.stdout
    assert result.exit_code != 0
    return result.output


def test_add_get_stat_pin_unpin(tmp_path: Path) -> None:
    data = os.urandom(300_000)
    (tmp_path / "w.bin").write_bytes(data)
    added = oml("add", str(tmp_path / "w.bin"), "--json")
    assert added["cid"] == cid_of_bytes(data, 0) and added["pinned"] is True
    v1 = oml("add", str(tmp_path / "w.bin"), "--cid-version", "1", "--json")
    assert v1["cid"] == cid_of_bytes(data, 1) and v1["cid"].startswith("bafy")
    got = oml("get", v1["cid"], str(tmp_path / "out.bin"), "--json")
    assert got == {
        "cid": v1["cid"],
        "path": str(tmp_path / "out.bin"),
        "type": "file",
        "verified": True,
    }
    assert (tmp_path / "out.bin").read_bytes() == data
    stat = oml("stat", added["cid"], "--json")
    assert (stat["type"], stat["size"], stat["pinned"]) == ("file", 300_000, True)
    assert oml("unpin", added["cid"], "--json") == {"cid": added["cid"], "pinned": False}
    assert oml("stat", added["cid"], "--json")["pinned"] is False
    assert oml("pin", added["cid"], "--json")["pinned"] is True
    # Plain output is just the CID, for shell pipelines.
    assert oml("add", str(tmp_path / "w.bin")).strip() == added["cid"]


def test_add_and_get_directory(tmp_path: Path) -> None:
    (tmp_path / "d" / "sub").mkdir(parents=True)
    (tmp_path / "d" / "sub" / "x.txt").write_text("x")
    added = oml("add", str(tmp_path / "d"), "--json")
    assert added["type"] == "directory"
    assert oml("get", added["cid"], str(tmp_path / "copy"), "--json")["type"] == "directory"
    assert (tmp_path / "copy" / "sub" / "x.txt").read_text() == "x"


def test_publish_fetch_encrypted_with_keystore(tmp_path: Path) -> None:
    account = Account.create()
    keystore = tmp_path / "host.json"
    # pbkdf2 with few iterations keeps the test fast; real keystores use scrypt.
    keystore.write_text(
        json.dumps(Account.encrypt(account.key, "pw", kdf="pbkdf2", iterations=1000))
    )
    from agents.storage.keys import public_key_of

    pubkey = "0x" + public_key_of(bytes(account.key)).hex()
    model = tmp_path / "model"
    (model / "nested").mkdir(parents=True)
    (model / "config.json").write_text('{"model_type": "gpt2"}')
    (model / "nested" / "weights.bin").write_bytes(os.urandom(400_000))
    published = oml(
        "publish",
        str(model),
        "--encrypt-to",
        pubkey,
        "--license",
        "mit",
        "--parent",
        "2:1",
        "--fingerprint-scheme",
        '{"count": 16}',
        "--json",
    )
    assert published["encrypted"] is True and published["files"] == 2
    cid = published["cid"]
    wrong = oml(
        "fetch",
        cid,
        str(tmp_path / "x"),
        "--keystore",
        str(keystore),
        "--json",
        env={"OML_KEYSTORE_PASSWORD": "nope"},
        ok=False,
    )
    assert "wrong password" in wrong
    fetched = oml(
        "fetch",
        cid,
        str(tmp_path / "copy"),
        "--keystore",
        str(keystore),
        "--json",
        env={"OML_KEYSTORE_PASSWORD": "pw"},
    )
    assert fetched["files"] == 2 and fetched["verified"] is True
    for name in ("config.json", "nested/weights.bin"):
        assert (tmp_path / "copy" / name).read_bytes() == (model / name).read_bytes()
    assert "encrypted to 0x" in oml("fetch", cid, str(tmp_path / "y"), ok=False)
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists()


def test_errors_are_messages_not_tracebacks(tmp_path: Path) -> None:
    output = oml(
        "--api-url",
        "http://127.0.0.1:1",
        "--timeout",
        "1",
        "stat",
        "QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5o",
        ok=False,
    )
    assert "127.0.0.1:1" in output and "Traceback" not in output
    assert "--encrypt-to" in oml("publish", str(tmp_path), "--encrypt-to", "0x1234", ok=False)
    assert "not a CID" in oml("get", "bogus", str(tmp_path / "o"), ok=False)


@pytest.mark.parametrize("command", ["add", "get", "publish", "fetch", "pin", "unpin", "stat"])
def test_help_teaches(command: str) -> None:
    assert "Usage:" in oml(command, "--help")
