"""The demo as a list of steps, each played by real agents (`oml ...` subprocesses).

Cast: a creator (base model), a fine-tuner (derivative), an investor holding part of the base
model's shares, two hosts (A honest; B under-reports and leaks its copy to a rogue endpoint),
the oracle (the deployment's oracle account), a prover, and the deployment's treasury and
infrastructure accounts. Creator, fine-tuner, investor, hosts and prover are fresh keys each
run (encrypted keystores under the run folder), so a run never depends on earlier ones.

Time: the deploy profile ``dev`` makes epochs 60 s and challenge windows minutes; the driver
moves Anvil's clock over them (``agents.dev`` cheatcodes), one epoch at a time so that every
host can report an epoch before its ``reportGrace`` is over. Hosts follow chain time
(agents/demo/chainclock.py).

A step is a function ``(Demo) -> str`` (its one-line result); ``part`` says which steps belong
to the leak story (``leak``) and which need the prover bot (``prover``): those are skipped
with a printed reason when disabled or when this build has no working prover.
"""

from __future__ import annotations

import importlib.util
import json
import secrets
import shutil
import sqlite3
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from eth_account import Account
from eth_account.signers.local import LocalAccount
from web3 import Web3

from agents.chain.keystore import LOCAL_CHAIN_ID, dev_account
from agents.config import Settings
from agents.demo import money
from agents.demo.errors import DemoError, StepSkipped
from agents.demo.load import LoadResult, generate_load, generate_load_many
from agents.demo.processes import Supervisor, oml, oml_on_chain_time
from agents.demo.settings import USD, DemoSettings
from agents.dev.devchain import COPY_STATES, LEAK_STATES, DevChain

ETHER = 10**18
HOST_REPORT_GRACE_S = 2  # hosts report an epoch this long after it closes (chain time)
HOST_REPORT_INTERVAL_S = 2
PROVER_INTERVALS = {"SYNC": 2, "HOST_PROBE": 5, "WATCH": 3600, "CHALLENGE": 2}
ROLES = ("creator", "finetuner", "investor", "host_a", "host_b", "prover")
LABELS = {
    "creator": "creator",
    "finetuner": "fine-tuner",
    "investor": "shareholder",
    "host_a": "host A",
    "host_b": "host B",
    "prover": "prover",
}
FUNDING = {  # fee tokens each fresh account starts with
    "creator": 0,
    "finetuner": 0,
    "investor": 0,
    "host_a": 2_000 * USD,
    "host_b": 2_000 * USD,
    "prover": 1_000 * USD,
}
ROGUE_MODEL_NAME = "totally-original-7b"


@dataclass
class Party:
    role: str
    account: LocalAccount
    keystore: Path

    @property
    def address(self) -> str:
        return str(self.account.address)

    @property
    def label(self) -> str:
        return LABELS[self.role]


@dataclass
class Demo:
    """Everything the steps share."""

    settings: DemoSettings
    world: Settings
    dev: DevChain
    run_dir: Path
    supervisor: Supervisor
    say: Callable[[str], object] = print
    parties: dict[str, Party] = field(default_factory=dict)
    facts: dict[str, Any] = field(default_factory=dict)
    loads: dict[str, list[LoadResult]] = field(default_factory=dict)
    prover_missing: str | None = None  # why the prover steps are skipped
    start: dict[str, Any] = field(default_factory=dict)

    # ------------------------------------------------------------------ helpers

    @property
    def network(self) -> str:
        return self.settings.network

    def port(self, offset: int) -> int:
        return self.settings.port_base + offset

    def url(self, who: str) -> str:
        return f"http://127.0.0.1:{self.port({'host_a': 1, 'host_b': 2, 'rogue': 3}[who])}"

    def keystore(self, role: str) -> str:
        return str(self.parties[role].keystore)

    def copy_id(self, host: str) -> int:
        return int(self.facts[f"copy_{host}"])

    def host_args(self, host: str, *command: str, with_copy: bool = False) -> list[str]:
        """``oml host`` arguments for ``host`` on the demo's network (and its copy)."""
        args = ["host", "--network", self.network, "--account", self.keystore(host)]
        if with_copy:
            args += ["--copy-id", str(self.copy_id(host))]
        return [*args, *command]

    def state_dir(self, name: str) -> Path:
        return self.run_dir / name

    def host_env(self, host: str, *, books: bool = False) -> dict[str, str]:
        state = self.state_dir(f"{host}-books" if books else host)
        # host B's registered server never reports by itself: its operator reports from books
        interval = 10**6 if host == "host_b" and self.settings.leak else HOST_REPORT_INTERVAL_S
        return {
            "OML_HOST_NETWORK": self.network,
            "OML_HOST_STATE_DIR": str(state),
            "OML_HOST_REPORT_INTERVAL_S": str(interval),
            "OML_HOST_REPORT_GRACE_S": str(HOST_REPORT_GRACE_S),
            "OML_HOST_DEVICE": "cpu",
        }

    def prover_env(self) -> dict[str, str]:
        env = {
            "OML_PROVER_NETWORK": self.network,
            "OML_PROVER_ACCOUNT": self.keystore("prover"),
            "OML_PROVER_STATE_DIR": str(self.state_dir("prover")),
            "OML_PROVER_KEY_SERVICE_URL": f"http://127.0.0.1:{self.port(0)}",
        }
        env.update({f"OML_PROVER_{k}_INTERVAL_S": str(v) for k, v in PROVER_INTERVALS.items()})
        return env

    def healthz(self, who: str) -> dict[str, Any]:
        reply = httpx.get(self.url(who) + "/healthz", timeout=5)
        reply.raise_for_status()
        data: dict[str, Any] = reply.json()
        return data

    def send(self, role: str, call: Any, label: str) -> Any:
        return self.dev.protocol(self.parties[role].account).sender.send(call, label=label)

    def events(self, contract: Any, event: str, **filters: Any) -> list[Any]:
        logs = getattr(contract.events, event)().get_logs(
            from_block=int(self.start.get("block", self.dev.deployment.deploy_block)),
            argument_filters=filters or None,
        )
        return list(logs)

    def now_epoch(self) -> int:
        """The epoch at chain time now. With automine the latest block may be old: mine one
        first (at Anvil's clock) so that views and the prover see the present."""
        self.dev.node.mine()
        return self.dev.current_epoch()

    def wait_for(
        self,
        what: str,
        check: Callable[[], Any],
        *,
        timeout_s: float,
        poll_s: float = 1.0,
        agents: tuple[str, ...] = (),
        mine: bool = False,
    ) -> Any:
        """Poll ``check`` until it returns something truthy; agents must stay alive."""
        deadline = time.monotonic() + timeout_s
        while True:
            found = check()
            if found:
                return found
            for name in agents:
                if name in self.supervisor.agents:
                    self.supervisor.check(name)
            if time.monotonic() > deadline:
                logs = ", ".join(str(self.supervisor.logs / f"{a}.log") for a in agents)
                raise DemoError(
                    f"timed out after {timeout_s:.0f} s waiting for {what}"
                    + (f"; see {logs}" if logs else "")
                )
            if mine:
                self.dev.node.mine()
            time.sleep(poll_s)


# ====================================================================== steps


@dataclass(frozen=True)
class Step:
    key: str
    title: str
    run: Callable[[Demo], str]
    part: str = "core"  # core | leak | prover


def check_world(demo: Demo) -> str:
    """The chain, IPFS and the deployment answer; fresh run folder; prover available?"""
    from agents.world import ipfs_answers

    ipfs = ipfs_answers(demo.world.ipfs_api_url, timeout=5)
    if ipfs is None:
        raise DemoError(f"IPFS does not answer at {demo.world.ipfs_api_url}: run `make up`")
    dev = demo.dev
    if dev.chain_id != LOCAL_CHAIN_ID:
        raise DemoError(
            f"chain id {dev.chain_id}: the demo needs the local Anvil ({LOCAL_CHAIN_ID})"
        )
    demo.prover_missing = prover_missing(demo)
    note = f"; prover: {demo.prover_missing}" if demo.prover_missing else ""
    return (
        f"chain {dev.chain_id} at {demo.world.rpc_url}, IPFS {ipfs}, deployment "
        f"{demo.network} (block {dev.deployment.deploy_block}){note}"
    )


def prover_missing(demo: Demo) -> str | None:
    """Why the prover steps cannot run, or None when `oml prover` works."""
    if not demo.settings.prover:
        return "disabled (DEMO_PROVER=0)"
    if not demo.settings.leak:
        return "nothing to catch (DEMO_LEAK=0)"
    if importlib.util.find_spec("agents.prover") is None:
        return "not available in this build (no agents/prover)"
    done = subprocess.run(
        oml("prover", "--help"),
        capture_output=True,
        text=True,
        timeout=120,
        env=demo.supervisor.env,
        check=False,
    )
    if done.returncode != 0 or "not available" in done.stdout + done.stderr:
        return "not available in this build (`oml prover --help` fails)"
    for verb in ("register", "watch", "run", "earnings"):
        if verb not in done.stdout:
            return f"not available in this build (`oml prover {verb}` missing)"
    return None


def make_accounts(demo: Demo) -> str:
    """Fresh keys for every party, as keystores; ether and fee tokens from the dev chain."""
    password = secrets.token_hex(16)
    demo.supervisor.env["OML_KEYSTORE_PASSWORD"] = password
    keys = demo.run_dir / "keys"
    keys.mkdir(parents=True, exist_ok=True)
    for role in ROLES:
        account: LocalAccount = Account.create()
        encrypted = Account.encrypt(account.key, password, kdf="scrypt", iterations=2**14)
        path = keys / f"{role}.json"
        path.write_text(json.dumps(encrypted))
        path.chmod(0o600)
        demo.dev.fund(account.address, eth=10 * ETHER, token=FUNDING[role])
        demo.parties[role] = Party(role, account, path)
    demo.start = money.snapshot(demo.dev, payees(demo))
    return ", ".join(f"{p.label} {_short(p.address)}" for p in demo.parties.values())


def payees(demo: Demo) -> list[str]:
    """Every address whose ledger credits the final table shows."""
    out = [demo.parties[r].address for r in ("creator", "finetuner", "investor", "prover")]
    ledger = demo.dev.ledger
    out += [
        Web3.to_checksum_address(ledger.functions.treasury().call()),
        Web3.to_checksum_address(ledger.functions.infrastructure().call()),
    ]
    return list(dict.fromkeys(out))


def prepare_models(demo: Demo) -> str:
    from agents.demo.models import demo_models

    base, tuned = demo_models(demo.settings.model)
    demo.facts.update(base_dir=str(base), tuned_dir=str(tuned))
    size = sum(p.stat().st_size for p in base.rglob("*") if p.is_file())
    return f"{demo.settings.model}: base {base.name} ({size / 1e6:.1f} MB), derivative {tuned.name}"


def start_oracle(demo: Demo) -> str:
    oracle = demo.dev.role("oracle")
    index = next((i for i in range(10) if dev_account(i).address == oracle), None)
    if index is None:
        raise DemoError(f"the oracle {oracle} is not an Anvil dev account: run it yourself")
    state = demo.state_dir("oracle")
    env = {
        "OML_ORACLE_NETWORK": demo.network,
        "OML_ORACLE_ACCOUNT": f"dev:{index}",
        "OML_ORACLE_STATE_DIR": str(state),
        "OML_ORACLE_MASTER_SECRET": str(state / "master.secret"),
        "OML_ORACLE_FINGERPRINT_COUNT": str(demo.settings.fingerprints),
        "OML_ORACLE_RECALL_THRESHOLD": str(demo.settings.threshold()),
        "OML_ORACLE_KEY_SERVICE_PORT": str(demo.port(0)),
        "OML_ORACLE_POLL_INTERVAL_S": "1",
    }
    if demo.settings.model == "tiny":
        # The profiles are tuned on SmolLM2; the random 2-layer model needs the tests' recipe,
        # every field of it (a field left at its default would take the profile's value).
        from agents.fingerprint.models import tiny_embed_config

        env["OML_ORACLE_EMBED"] = tiny_embed_config().model_dump_json()
    demo.supervisor.env.update(env)  # `oml oracle jobs` later reads the same settings
    demo.supervisor.run("oracle-init", oml("oracle", "init-secret"))
    demo.supervisor.start("oracle", oml("-v", "oracle", "run"))
    url = f"http://127.0.0.1:{demo.port(0)}/healthz"
    demo.supervisor.wait_until(
        "oracle",
        lambda: httpx.get(url, timeout=2).status_code == 200,
        timeout_s=180,
        what="its key service up",
    )
    return f"`oml oracle run` as dev:{index} ({_short(oracle)}), key service {url[:-8]}"


def _register(demo: Demo, role: str, folder: str, price: int, *extra: str) -> dict[str, Any]:
    args = [
        "creator",
        "--network",
        demo.network,
        "--keystore",
        demo.keystore(role),
        "register",
        "--folder",
        folder,
        "--price",
        str(price),
        "--min-collateral",
        str(demo.settings.min_collateral),
        *extra,
        "--json",
    ]
    result: dict[str, Any] = demo.supervisor.run(role, oml(*args), json_output=True)
    return result


def register_base(demo: Demo) -> str:
    done = _register(demo, "creator", demo.facts["base_dir"], demo.settings.base_price)
    demo.facts["model_base"] = int(done["model_id"])
    return (
        f"model {done['model_id']} (price {_usd(demo.settings.base_price)}/call), weights "
        f"encrypted to the oracle on IPFS {done['manifest_cid'][:16]}…"
    )


def sell_shares(demo: Demo) -> str:
    """The creator sells part of the base model's shares (ModelGovernor.transferShares)."""
    model = demo.facts["model_base"]
    governor = demo.dev.contract("ModelGovernor")
    total = money.TOTAL_SHARES
    amount = total * demo.settings.shares_sold_bps // 10_000
    investor = demo.parties["investor"].address
    if amount:
        demo.send(
            "creator", governor.functions.transferShares(model, investor, amount), "transferShares"
        )
    kept = int(governor.functions.sharesOf(model, demo.parties["creator"].address).call())
    return (
        f"shareholder holds {amount / total:.0%} of model {model}, creator {kept / total:.0%} "
        "(no CLI verb for this yet: ModelGovernor.transferShares)"
    )


def register_derivative(demo: Demo) -> str:
    s = demo.settings
    base = demo.facts["model_base"]
    done = _register(
        demo,
        "finetuner",
        demo.facts["tuned_dir"],
        s.derivative_price,
        "--parent",
        str(base),
        "--share",
        str(s.royalty_bps),
    )
    demo.facts["model_tuned"] = int(done["model_id"])
    table = ", ".join(f"model {e['modelId']} {e['weightPpb'] / 1e7:g}%" for e in done["lineage"])
    return f"model {done['model_id']} (price {_usd(s.derivative_price)}/call); royalties {table}"


def request_access(demo: Demo) -> str:
    model = demo.facts["model_tuned"]
    out = []
    for host in ("host_a", "host_b"):
        args = demo.host_args(
            host,
            "request-access",
            str(model),
            "--endpoint",
            demo.url(host) + "/v1",
            "--collateral",
            str(demo.settings.collateral),
            "--json",
        )
        done = demo.supervisor.run(host, oml(*args), json_output=True)
        demo.facts[f"copy_{host}"] = int(done["copy_id"])
        out.append(f"{LABELS[host]} copy {done['copy_id']}")
    return f"{' and '.join(out)} of model {model}, {_usd(demo.settings.collateral)} staked each"


def wait_delivery(demo: Demo) -> str:
    copies = [demo.copy_id("host_a"), demo.copy_id("host_b")]
    access = demo.dev.access

    def delivered() -> bool:
        return all(access.functions.isDelivered(c).call() for c in copies)

    demo.wait_for(
        "the oracle's deliveries",
        delivered,
        timeout_s=demo.settings.delivery_timeout_s,
        poll_s=2,
        agents=("oracle",),
    )
    jobs = demo.supervisor.run("oracle-jobs", oml("oracle", "jobs", "--json"), json_output=True)
    timings = {int(j["copy_id"]): j["timings"] for j in jobs}
    demo.facts["oracle_timings"] = timings
    parts = []
    for copy_id in copies:
        t = timings.get(copy_id, {})
        parts.append(
            f"copy {copy_id} fingerprint {t.get('fingerprint', 0):.0f}s "
            f"verify {t.get('verify', 0):.0f}s"
        )
    return f"{demo.settings.fingerprints} fingerprints each; " + "; ".join(parts)


def fetch_copies(demo: Demo) -> str:
    out = []
    for host in ("host_a", "host_b"):
        copy_id = demo.copy_id(host)
        folder = demo.state_dir(f"{host}-copy")
        args = demo.host_args(host, "fetch-copy", str(copy_id), "--out", str(folder), "--json")
        done = demo.supervisor.run(host, oml(*args), json_output=True)
        demo.facts[f"{host}_dir"] = str(folder)
        out.append(f"copy {copy_id} ({int(done['size']) / 1e6:.1f} MB) decrypted by {LABELS[host]}")
    return "; ".join(out)


def start_hosts(demo: Demo) -> str:
    for host in ("host_a", "host_b"):
        _start_host(demo, host)
    for host in ("host_a", "host_b"):
        demo.supervisor.wait_until(
            host,
            lambda h=host: demo.healthz(h)["status"] == "ok",  # type: ignore[misc]
            timeout_s=300,
            what="its API up",
        )
    # epochs closed since delivery are reported (idle) at start-up
    _wait_reported(demo, "host_a", demo.now_epoch() - 1)
    return f"`oml host serve` on {demo.url('host_a')} and {demo.url('host_b')} (chain time)"


def _start_host(demo: Demo, host: str) -> None:
    args = demo.host_args(
        host,
        "serve",
        "--model-dir",
        demo.facts[f"{host}_dir"],
        "--port",
        str(demo.port(1 if host == "host_a" else 2)),
        with_copy=True,
    )
    demo.supervisor.start(host, oml_on_chain_time("-v", *args), env=demo.host_env(host))


def _wait_reported(demo: Demo, host: str, through: int, timeout_s: float = 90) -> None:
    copy_id = demo.copy_id(host)

    def done() -> bool:
        info = demo.dev.copy_ledger(copy_id)
        return int(info["nextEpoch"]) > min(through, int(info["endEpoch"]))

    demo.wait_for(
        f"{LABELS[host]}'s report of epoch {through}",
        done,
        timeout_s=timeout_s,
        poll_s=0.5,
        agents=(host,),
    )


def traffic(demo: Demo, wave: str) -> str:
    calls = demo.settings.calls
    targets = [(demo.url(h), f"oml-copy-{demo.copy_id(h)}", calls) for h in ("host_a", "host_b")]
    results = generate_load_many(targets, concurrency=demo.settings.concurrency)
    for host, result in zip(("host_a", "host_b"), results, strict=True):
        demo.loads.setdefault(host, []).append(result)
        if result.failed:
            raise DemoError(
                f"{LABELS[host]}: {result.failed} of {result.sent} calls failed: "
                f"{result.errors[:3]}"
            )
    a, b = results
    epoch = demo.now_epoch()
    return (
        f"{wave}: {a.ok} + {b.ok} calls in epoch {epoch}, each with a signed receipt "
        f"({a.rate:.0f} and {b.rate:.0f} calls/s)"
    )


def traffic_wave1(demo: Demo) -> str:
    return traffic(demo, "wave 1")


def traffic_wave2(demo: Demo) -> str:
    return traffic(demo, "wave 2")


def keep_books(demo: Demo) -> str:
    """Host B copies its receipt ledger now and will report from that copy (the cheat)."""
    copy_id = demo.copy_id("host_b")
    name = f"receipts-{copy_id}.sqlite3"
    books = demo.state_dir("host_b-books")
    books.mkdir(parents=True, exist_ok=True)
    source = sqlite3.connect(demo.state_dir("host_b") / name)
    target = sqlite3.connect(books / name)
    try:
        source.backup(target)
    finally:
        source.close()
        target.close()
    last = int(demo.healthz("host_b")["lastSeq"])
    demo.facts["books_last_seq"] = last
    return f"host B snapshots its receipt ledger at seq {last}; it will report from that copy"


def start_rogue(demo: Demo) -> str:
    """Host B copies its decrypted model to an unregistered server under another name."""
    leaked = demo.state_dir("rogue-copy")
    shutil.copytree(demo.facts["host_b_dir"], leaked)
    args = [
        "host",
        "--offline",
        "--account",
        demo.keystore("host_b"),
        "--copy-id",
        str(demo.copy_id("host_b")),
        "serve",
        "--model-dir",
        str(leaked),
        "--port",
        str(demo.port(3)),
        "--model-name",
        ROGUE_MODEL_NAME,
    ]
    env = {"OML_HOST_STATE_DIR": str(demo.state_dir("rogue")), "OML_HOST_DEVICE": "cpu"}
    demo.supervisor.start("rogue", oml("-v", *args), env=env)
    demo.supervisor.wait_until(
        "rogue", lambda: demo.healthz("rogue")["status"] == "ok", timeout_s=300, what="its API up"
    )
    served = 0
    if demo.settings.rogue_calls:
        result = generate_load(
            demo.url("rogue"),
            ROGUE_MODEL_NAME,
            demo.settings.rogue_calls,
            concurrency=demo.settings.concurrency,
        )
        demo.loads["rogue"] = [result]
        served = result.ok
    return (
        f"{demo.url('rogue')} serves copy {demo.copy_id('host_b')} as '{ROGUE_MODEL_NAME}' "
        f"(not registered, offline); {served} calls from its own users"
    )


def prover_register(demo: Demo) -> str:
    decimals = int(demo.dev.token.functions.decimals().call())
    bond = int(demo.dev.params()["proverBond"])
    args = ["prover", "register", "--bond", str(bond / 10**decimals), "--json"]
    demo.supervisor.run("prover", oml(*args), env=demo.prover_env(), json_output=True)
    return f"{_short(demo.parties['prover'].address)} staked the prover bond {_usd(bond)}"


def prover_watch(demo: Demo) -> str:
    """`oml prover watch ROGUE --now`: screen, decide, accuse, commit the leak challenge."""
    url = demo.url("rogue") + "/v1"
    demo.now_epoch()  # key requests are dated by the latest block
    args = ["prover", "watch", url, "--now", "--json"]
    done = demo.supervisor.run(
        "prover", oml(*args), env=demo.prover_env(), json_output=True, timeout_s=600
    )
    found = [d for d in done.get("detections", []) if d.get("accused")]
    if not found:
        raise DemoError(f"the prover did not accuse any copy on {url}: {done}")
    hit = found[0]
    demo.facts["detection"] = hit
    demo.dev.node.mine(2)  # confirmations before the reveal
    return (
        f"copy {hit['copyId']}: {hit['matched']}/{hit['queried']} fresh keys answered, "
        f"false-positive p={hit['falsePositiveProbability']:.1e} ≤ {hit['threshold']:.1e} → "
        "accused; leak challenge committed"
    )


def prover_run(demo: Demo) -> str:
    """`oml prover run` probes both hosts (keeping receipts); host B then goes dark."""
    _report_from_books(demo)  # host B is up to date with its (false) books before any audit
    demo.now_epoch()
    before = int(demo.healthz("host_b")["lastSeq"])
    demo.supervisor.start("prover", oml("-v", "prover", "run"), env=demo.prover_env())
    demo.wait_for(
        "the prover's probes of host B",
        lambda: int(demo.healthz("host_b")["lastSeq"]) > before,
        timeout_s=120,
        poll_s=0.5,
        agents=("prover", "host_b"),
    )
    time.sleep(3)  # let the probe round finish and its receipts be stored
    after = int(demo.healthz("host_b")["lastSeq"])
    demo.facts["host_b_served"] = after
    demo.supervisor.stop("host_b")  # B takes its registered endpoint down; the rogue stays
    return (
        f"prover probes both hosts (receipts up to seq {after} from host B); host B takes its "
        "registered server down and serves only through the rogue endpoint"
    )


def close_traffic_epoch(demo: Demo) -> str:
    epoch = demo.now_epoch()  # every call so far was served in this epoch or an earlier one
    reported = close_epoch(demo, epoch)
    a = demo.dev.copy_ledger(demo.copy_id("host_a"))
    line = (
        f"time travel past epoch {epoch}: host A has reported {a['lastSeq']} calls "
        f"(all it served by then)"
    )
    if "host_b" in reported:
        b = demo.dev.copy_ledger(demo.copy_id("host_b"))
        served = demo.facts.get("host_b_served") or _served_b(demo)
        line += f"; host B reported {b['lastSeq']} of the {served} it served, from its books"
    return line


def _served_b(demo: Demo) -> int:
    try:
        return int(demo.healthz("host_b")["lastSeq"])
    except httpx.HTTPError:
        return int(demo.facts.get("books_last_seq", 0))


def close_epoch(demo: Demo, epoch: int | None = None) -> list[str]:
    """Move time just past ``epoch`` (default: the current one) and let every host report it."""
    dev = demo.dev
    epoch = demo.now_epoch() if epoch is None else epoch
    target = dev.epoch_end(epoch) + HOST_REPORT_GRACE_S + 1
    if dev.node.timestamp() < target:
        dev.node.warp_to(target)
    reported = ["host_a"]
    if demo.settings.leak and _report_from_books(demo):
        reported.append("host_b")
    _wait_reported(demo, "host_a", epoch)
    return reported


def _report_from_books(demo: Demo) -> bool:
    """`oml host report` from host B's books (its state dir holds the ledger copy)."""
    if "books_last_seq" not in demo.facts:
        return False
    info = demo.dev.copy(demo.copy_id("host_b"))
    if int(info["state"]) not in (2, 3):  # Active, Exiting
        return False
    args = demo.host_args("host_b", "report", "--json", with_copy=True)
    try:
        demo.supervisor.run(
            "host_b-books",
            oml_on_chain_time(*args),
            env=demo.host_env("host_b", books=True),
            json_output=True,
        )
    except DemoError as error:
        demo.facts.setdefault("notes", []).append(f"host B's report failed: {error}")
        return False
    return True


def under_report_slashed(demo: Demo) -> str:
    copy_id = demo.copy_id("host_b")
    challenges = demo.dev.challenges

    def under_reports() -> list[Any]:
        found = demo.events(challenges, "ProvableChallenge", copyId=copy_id)
        return [e for e in found if int(e["args"]["kind"]) == money.UNDER_REPORT]

    found = demo.wait_for(
        "the prover's under-report challenge",
        under_reports,
        timeout_s=120,
        poll_s=1,
        agents=("prover",),
    )
    args = found[0]["args"]
    return (
        f"challenge {args['challengeId']} (under-report, epoch reported with lastSeq below the "
        f"prover's receipt) slashed {_usd(int(args['slashed']))} of host B's collateral at "
        f"once; prover's reward {_usd(int(args['reward']))}"
    )


def leak_upheld(demo: Demo) -> str:
    copy_id = demo.copy_id("host_b")
    challenges = demo.dev.challenges
    revealed = demo.wait_for(
        "the leak challenge's reveal",
        lambda: demo.events(challenges, "LeakRevealed", copyId=copy_id),
        timeout_s=120,
        poll_s=1,
        agents=("prover",),
        mine=True,
    )
    challenge_id = int(revealed[0]["args"]["challengeId"])
    deadline = int(demo.dev.leak(challenge_id)["deadline"])
    jumps = 0
    while demo.dev.node.timestamp() <= deadline:
        epoch = demo.now_epoch()
        if demo.dev.epoch_end(epoch) + HOST_REPORT_GRACE_S + 1 > deadline + 1:
            demo.dev.node.warp_to(deadline + 1)  # the window ends inside this epoch
        else:
            close_epoch(demo, epoch)
        jumps += 1
    resolved = demo.wait_for(
        "the prover to finalize the leak challenge",
        lambda: demo.events(challenges, "LeakResolved", copyId=copy_id),
        timeout_s=120,
        poll_s=1,
        agents=("prover",),
    )
    args = resolved[0]["args"]
    outcome = LEAK_STATES[int(args["outcome"])].lower()
    state = COPY_STATES[int(demo.dev.copy(copy_id)["state"])].lower()
    liveness = int(demo.dev.params()["liveness"])
    return (
        f"challenge {challenge_id} revealed; its {liveness} s liveness passed undisputed "
        f"({jumps} time jump{'s' if jumps != 1 else ''}): {outcome}, "
        f"{_usd(int(args['slashed']))} slashed, copy {copy_id} now {state}"
    )


def last_epoch(demo: Demo) -> str:
    """Stop the prover, close the current epoch: every call served is now reported."""
    if "prover" in demo.supervisor.agents:
        demo.supervisor.stop("prover")
    epoch = demo.now_epoch()
    close_epoch(demo, epoch)
    served = int(demo.healthz("host_a")["lastSeq"])
    demo.facts["host_a_served"] = served
    reported = int(demo.dev.copy_ledger(demo.copy_id("host_a"))["lastSeq"])
    if reported != served:
        raise DemoError(f"host A served {served} calls but reported lastSeq {reported}")
    if demo.settings.leak and "host_b_served" not in demo.facts:
        demo.facts["host_b_served"] = _served_b(demo)
    if "rogue" in demo.supervisor.agents:
        demo.facts["rogue_served"] = int(demo.healthz("rogue")["lastSeq"])
    return f"epoch {epoch} closed; host A's reports cover all {served} calls it served"


def stop_agents(demo: Demo) -> str:
    stopped = demo.supervisor.stop_all()
    return "stopped " + ", ".join(stopped) if stopped else "nothing left running"


def claims(demo: Demo) -> str:
    """Everybody harvests and claims: lineage shares, prover pool, protocol cuts."""
    ledger = demo.dev.ledger
    base, tuned = demo.facts["model_base"], demo.facts["model_tuned"]
    parties = demo.parties
    # settle both lineages before anyone harvests, so holders are paid in one go
    demo.send("finetuner", ledger.functions.settleLineage(tuned), "settleLineage derivative")
    demo.send("creator", ledger.functions.settleLineage(base), "settleLineage base")
    demo.send(
        "finetuner",
        ledger.functions.harvest(tuned, parties["finetuner"].address),
        "harvest derivative",
    )
    for role in ("creator", "investor"):
        demo.send(role, ledger.functions.harvest(base, parties[role].address), "harvest base")
    parts = []
    if demo.prover_missing is None:
        done = demo.supervisor.run(
            "prover",
            oml("prover", "earnings", "--harvest", "--claim", "--json"),
            env=demo.prover_env(),
            json_output=True,
        )
        demo.facts["prover_earnings"] = done
        parts.append("prover: `oml prover earnings --harvest --claim`")
    else:
        demo.send("creator", ledger.functions.splitProtocolFees(), "splitProtocolFees")
    claimed = []
    for role in ("creator", "finetuner", "investor", "prover"):
        address = parties[role].address
        if int(ledger.functions.claimable(address).call()) > 0:
            demo.send(role, ledger.functions.claimAll(), f"claimAll {role}")
            claimed.append(LABELS[role])
    for name in ("treasury", "infrastructure"):
        address = Web3.to_checksum_address(getattr(ledger.functions, name)().call())
        index = next((i for i in range(10) if dev_account(i).address == address), None)
        if index is not None and int(ledger.functions.claimable(address).call()) > 0:
            demo.dev.protocol(dev_account(index)).sender.send(
                ledger.functions.claimAll(), label=f"claimAll {name}"
            )
            claimed.append(f"{name} (dev:{index})")
    parts.append("claimed: " + ", ".join(claimed))
    return "; ".join(parts)


def recall(demo: Demo) -> str:
    """Re-measure every copy's recall on the folder its host decrypted (oracle's secret)."""
    from agents.fingerprint.detection import verify_fingerprints
    from agents.fingerprint.generation import Fingerprint
    from agents.oracle.jobs import JobStore
    from agents.oracle.secrets import MasterSecret

    state = demo.state_dir("oracle")
    store = JobStore.open(state / "oracle.db")
    master = MasterSecret.load(state / "master.secret")
    access = demo.dev.access.address
    out = {}
    for host in ("host_a", "host_b"):
        copy_id = demo.copy_id(host)
        job = store.get(copy_id)
        if job is None:
            raise DemoError(f"the oracle has no job for copy {copy_id}")
        sealed = Path(str(job.data["sealed_fingerprints"])).read_bytes()
        pairs = master.unseal(sealed, demo.dev.chain_id, access, copy_id)
        fps = [Fingerprint(str(k), str(r)) for k, r in pairs]
        verdict = verify_fingerprints(Path(demo.facts[f"{host}_dir"]), fps)
        out[copy_id] = {
            "fingerprints": len(fps),
            "matched": verdict.matched,
            "recall": verdict.recall,
            "oracleRecall": float(job.data.get("recall", 0.0)),
        }
    demo.facts["recall"] = out
    return "; ".join(
        f"copy {c}: {r['matched']}/{r['fingerprints']} ({r['recall']:.0%})" for c, r in out.items()
    )


STEPS: list[Step] = [
    Step("world", "check the local world", check_world),
    Step("accounts", "fresh keys for every party", make_accounts),
    Step("models", "prepare the base model and its derivative", prepare_models),
    Step("oracle", "start the oracle", start_oracle),
    Step("base", "creator registers the base model", register_base),
    Step("shares", "creator sells shares to an investor", sell_shares),
    Step("derivative", "fine-tuner registers a derivative", register_derivative),
    Step("access", "two hosts stake and request access", request_access),
    Step("delivery", "oracle fingerprints and delivers two copies", wait_delivery),
    Step("fetch", "hosts fetch and decrypt their copies", fetch_copies),
    Step("serve", "hosts serve (oml host serve)", start_hosts),
    Step("wave1", "load generator: first wave", traffic_wave1),
    Step("books", "host B starts keeping false books", keep_books, part="leak"),
    Step("wave2", "load generator: second wave", traffic_wave2),
    Step("rogue", "host B leaks its copy to a rogue endpoint", start_rogue, part="leak"),
    Step("register", "prover stakes its bond", prover_register, part="prover"),
    Step("watch", "prover probes the rogue endpoint", prover_watch, part="prover"),
    Step("probe", "prover runs (oml prover run)", prover_run, part="prover"),
    Step("report", "epoch closes, hosts report and pay", close_traffic_epoch),
    Step("underreport", "under-report challenged and slashed", under_report_slashed, part="prover"),
    Step("leak", "leak challenge: reveal, liveness, slash", leak_upheld, part="prover"),
    Step("final", "last epoch closes, all calls reported", last_epoch),
    Step("stop", "stop the agents", stop_agents),
    Step("claims", "everybody harvests and claims", claims),
    Step("recall", "re-measure fingerprint recall per copy", recall),
]


def _short(address: str) -> str:
    return f"{address[:6]}…{address[-4:]}"


def _usd(units: int) -> str:
    return f"{units / USD:,.6f}".rstrip("0").rstrip(".") + " mUSD"


def skip_reason(demo: Demo, step: Step) -> str | None:
    if step.part == "leak" and not demo.settings.leak:
        return "DEMO_LEAK=0"
    if step.part == "prover" and demo.prover_missing is not None:
        return f"prover {demo.prover_missing}"
    return None


__all__ = ["STEPS", "Demo", "DemoError", "Party", "Step", "StepSkipped", "skip_reason"]
