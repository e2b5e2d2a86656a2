"""Oracle latency: from a host's AccessRequested to the CopyDelivered transaction, per step.

Real parts only: a private Anvil (ape-foundry) with the protocol deployed by scripts/deploy.py,
a private js-ipfs node, the oracle of agents.oracle.runner (the same code as `oml oracle run`)
and the fingerprint engine. For each model (the tiny test model and SmolLM2-135M from
../shared/MODELS.md) a creator publishes the base encrypted to the oracle, a host requests
access, and one oracle round fetches, fingerprints, verifies, encrypts, uploads and delivers.
The oracle's own job table records each step's seconds; the end-to-end figure is wall time
from the mined request to the mined delivery (polling interval excluded: it is a setting).

Writes benchmarks/results/oracle-<date>.json and .md.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import click
from _common import ROOT, machine, private_ipfs, today, write_results

sys.path.insert(0, str(ROOT / "scripts"))

STEPS = ("fetch", "fingerprint", "verify", "encrypt", "upload", "deliver")
PRICE = 1_000  # mUSD base units per call
COLLATERAL = 10_000_000


def measure(network: str, work: Path, name: str, fingerprints: int) -> dict[str, Any]:
    from agents.chain.keystore import dev_account, public_key_bytes
    from agents.chain.protocol import Protocol
    from agents.fingerprint.models import smollm2_dir, tiny_embed_config, tiny_model_dir
    from agents.oracle.runner import build_oracle
    from agents.oracle.secrets import MasterSecret
    from agents.oracle.settings import OracleSettings
    from agents.storage.client import IpfsStore
    from agents.storage.models import publish_folder

    base = tiny_model_dir() if name == "tiny" else smollm2_dir()
    creator = Protocol.connect(dev_account(5), network)
    started = time.perf_counter()
    with IpfsStore() as store:
        published = publish_folder(store, base, encrypt_to=public_key_bytes(dev_account(1)))
    publish_s = time.perf_counter() - started
    model = creator.register_model(published.manifest_cid, price_per_call=PRICE,
                                   min_collateral=COLLATERAL)  # fmt: skip
    creator.publish_version(model, published.manifest_cid, published.manifest_cid)

    secret = work / f"{name}.secret"
    MasterSecret.create(secret)
    settings = OracleSettings(network=network, account="dev:1", state_dir=work / f"oracle-{name}",
                              master_secret=secret, fingerprint_count=fingerprints,
                              recall_threshold=0.75 if name == "tiny" else 0.95)  # fmt: skip
    recipe = tiny_embed_config(benign_sequences=256) if name == "tiny" else None
    oracle = build_oracle(settings, recipe)
    oracle.step()  # catch up on the deployment's past events before timing

    host = Protocol.connect(dev_account(6), network)
    host.faucet(COLLATERAL)
    host.ensure_allowance(host.contract("AccessManager").address, COLLATERAL)
    copy_id = host.request_access(model, 0, "http://host.invalid/v1", COLLATERAL)
    requested = time.perf_counter()
    delivered = oracle.step()
    latency = time.perf_counter() - requested
    job = oracle.service.jobs.get(copy_id)
    if delivered != 1 or job is None or not host.is_delivered(copy_id):
        raise SystemExit(f"{name}: copy {copy_id} was not delivered: {job}")
    size = sum(p.stat().st_size for p in base.rglob("*") if p.is_file())
    return {
        "model": name,
        "model_mb": round(size / 1e6, 1),
        "fingerprints": fingerprints,
        "latency_s": round(latency, 2),
        "steps_s": {step: job.timings.get(step) for step in STEPS},
        "base_publish_s": round(publish_s, 2),
        "recall": job.data.get("recall"),
    }


def markdown(document: dict[str, Any]) -> str:
    m = document["machine"]
    lines = [
        f"# Oracle latency, {document['date']}",
        "",
        f"Machine: {m['cpu']}, {m['cores']} cores, {m['memory_gib']} GiB, Python {m['python']}; "
        f"load average at the end {m['load_average']} (a shared machine: a load above the core "
        "count stretches every figure).",
        "",
        "AccessRequested → CopyDelivered on a private Anvil + js-ipfs, one oracle round; seconds.",
        "",
        "| model | size MB | fingerprints | total | " + " | ".join(STEPS) + " | recall |",
        "|---|---|---|---|" + "---|" * len(STEPS) + "---|",
    ]
    for run in document["runs"]:
        steps = " | ".join(f"{run['steps_s'][s]:.2f}" if run["steps_s"][s] is not None else "–"
                           for s in STEPS)  # fmt: skip
        lines.append(f"| {run['model']} | {run['model_mb']} | {run['fingerprints']} | "
                     f"{run['latency_s']:.1f} | {steps} | {run['recall']} |")  # fmt: skip
    return "\n".join(lines) + "\n"


@click.command()
@click.option("--model", "models", multiple=True, default=("tiny", "smollm2"),
              type=click.Choice(["tiny", "smollm2"]), show_default=True)  # fmt: skip
@click.option("--tiny-fingerprints", default=16, show_default=True)
@click.option("--smollm2-fingerprints", default=32, show_default=True)
def main(models: tuple[str, ...], tiny_fingerprints: int, smollm2_fingerprints: int) -> None:
    """Measure the oracle's request-to-delivery latency per step."""
    with tempfile.TemporaryDirectory(prefix="oml-bench-oracle-") as tmp:
        work = Path(tmp)
        with private_ipfs(work) as api_url:
            os.environ["OML_IPFS_API_URL"] = api_url
            from ape import accounts, networks
            from deploy import DEV, deploy_all, write_deployment

            from agents.config import get_settings

            with networks.parse_network_choice("ethereum:local:foundry") as provider:
                os.environ["OML_RPC_URL"] = provider.uri
                get_settings.cache_clear()
                a = accounts.test_accounts
                contracts = deploy_all(a[0], a[1], a[2], a[3], profile=DEV)
                roles = {"oracle": a[1].address, "arbiter": a[2].address,
                         "treasury": a[3].address}  # fmt: skip
                network = f"bench-oracle-{uuid.uuid4().hex[:8]}"
                path = write_deployment(network, provider.chain_id, 1, contracts, roles, DEV)
                try:
                    counts = {"tiny": tiny_fingerprints, "smollm2": smollm2_fingerprints}
                    runs = []
                    for name in models:
                        click.echo(f"oracle: {name} with {counts[name]} fingerprints ...")
                        runs.append(measure(network, work, name, counts[name]))
                        click.echo(f"  {runs[-1]['latency_s']:.1f} s  {runs[-1]['steps_s']}")
                finally:
                    path.unlink(missing_ok=True)
    document = {"benchmark": "oracle", "date": today(), "machine": machine(), "runs": runs}
    json_path, md_path = write_results("oracle", document, markdown(document))
    click.echo(f"wrote {json_path.relative_to(ROOT)} and {md_path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
