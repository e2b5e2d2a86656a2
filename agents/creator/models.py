"""What a creator does on chain: register a model (root or derivative), publish versions,
change its terms through its governance, and read a model back.

``ModelRegistry.registerModel(parents, shareBps, manifestCID, (price, minCollateral),
maxRoyaltyStack)`` mints the model to the caller (and all its 1e18 governance shares);
``publishVersion(modelId, weightsCID, manifestCID)`` appends a version (version 0 is accepted
at once, later ones by governance). The weights CID is the manifest of the folder published
encrypted to the oracle (what the oracle fetches to fingerprint copies).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from web3.logs import DISCARD

from agents.chain.protocol import Protocol
from agents.creator.connection import call_struct
from agents.creator.errors import RegistrationError
from agents.creator.governance import Action, Governance, ProposalOutcome

log = logging.getLogger(__name__)

BPS = 10_000
MAX_PARENTS = 4
UINT128_MAX = 2**128 - 1


@dataclass(frozen=True)
class Parent:
    model_id: int
    share_bps: int


@dataclass(frozen=True)
class Publication:
    model_id: int
    version: int
    weights_cid: str
    manifest_cid: str
    accepted: bool
    tx_hash: str
    proposal: ProposalOutcome | None = None


@dataclass(frozen=True)
class Registration:
    model_id: int
    owner: str
    manifest_cid: str
    parents: list[Parent]
    lineage: list[dict[str, int]]
    tx_hash: str
    version: Publication | None = None


@dataclass
class ModelView:
    model_id: int
    owner: str
    price_per_call: int
    min_collateral: int
    licensing_open: bool
    depth: int
    royalty_stack_bps: int
    parents: list[int]
    lineage: list[dict[str, int]]
    versions: list[dict[str, Any]] = field(default_factory=list)


class Creator:
    """One creator account on one deployment."""

    def __init__(self, protocol: Protocol) -> None:
        self.protocol = protocol
        self.registry = protocol.contract("ModelRegistry")
        self.governance = Governance(protocol)
        self.address = str(protocol.account.address)

    # ----------------------------------------------------------------- register

    def register(
        self,
        manifest_cid: str,
        *,
        price_per_call: int,
        min_collateral: int,
        parents: list[Parent] | None = None,
        max_royalty_stack: int | None = None,
        publish_weights_cid: str | None = None,
    ) -> Registration:
        """Register a model; with ``publish_weights_cid`` also publish it as version 0.

        ``max_royalty_stack`` (bps) defaults to the sum of the parents' shares: the stack
        this registrant expects, so nothing larger can slip in.
        """
        parents = parents or []
        self._check_registration(manifest_cid, price_per_call, min_collateral, parents)
        stack = sum(p.share_bps for p in parents)
        limit = stack if max_royalty_stack is None else max_royalty_stack
        if not 0 <= limit <= BPS:
            raise RegistrationError(f"--max-royalty-stack {limit} must be within 0..{BPS} bps")
        receipt = self.protocol.sender.send(
            self.registry.functions.registerModel(
                [p.model_id for p in parents],
                [p.share_bps for p in parents],
                manifest_cid,
                (price_per_call, min_collateral),
                limit,
            ),
            label="registerModel",
        )
        [event] = self.registry.events.ModelRegistered().process_receipt(receipt, errors=DISCARD)
        model_id = int(event["args"]["modelId"])
        log.info("registered model %d (%d parents)", model_id, len(parents))
        version = None
        if publish_weights_cid is not None:
            version = self.publish(model_id, weights_cid=publish_weights_cid,
                                   manifest_cid=manifest_cid)  # fmt: skip
        return Registration(
            model_id=model_id,
            owner=self.address,
            manifest_cid=manifest_cid,
            parents=parents,
            lineage=self.lineage(model_id),
            tx_hash=receipt["transactionHash"].to_0x_hex(),
            version=version,
        )

    def _check_registration(
        self, manifest_cid: str, price: int, min_collateral: int, parents: list[Parent]
    ) -> None:
        if not manifest_cid.strip():
            raise RegistrationError("the manifest CID is empty: pass --manifest-cid or --folder")
        for name, value in (("price", price), ("min collateral", min_collateral)):
            if not 0 <= value <= UINT128_MAX:
                raise RegistrationError(f"{name} {value} must be within 0..2^128-1 base units")
        if len(parents) > MAX_PARENTS:
            raise RegistrationError(f"{len(parents)} parents given; a model has at most 4")
        seen: set[int] = set()
        for parent in parents:
            if parent.model_id in seen:
                raise RegistrationError(f"parent {parent.model_id} is named twice")
            seen.add(parent.model_id)
            if not 1 <= parent.share_bps <= BPS:
                raise RegistrationError(
                    f"share {parent.share_bps} bps for parent {parent.model_id} must be "
                    f"within 1..{BPS}"
                )
            if not self.registry.functions.exists(parent.model_id).call():
                raise RegistrationError(
                    f"parent model {parent.model_id} does not exist on "
                    f"{self.protocol.deployment.network}: register it first"
                )

    # ----------------------------------------------------------------- versions

    def publish(
        self, model_id: int, *, weights_cid: str, manifest_cid: str, accept: bool = True
    ) -> Publication:
        """Append a version; later versions are put to governance for acceptance if asked."""
        self._check_owner(model_id)
        receipt = self.protocol.sender.send(
            self.registry.functions.publishVersion(model_id, weights_cid, manifest_cid),
            label=f"publishVersion model {model_id}",
        )
        [event] = self.registry.events.VersionPublished().process_receipt(receipt, errors=DISCARD)
        version = int(event["args"]["version"])
        proposal = None
        if accept and not self.registry.functions.isVersionAccepted(model_id, version).call():
            proposal = self.governance.enact(model_id, Action.ACCEPT_VERSION, version)
        return Publication(
            model_id=model_id,
            version=version,
            weights_cid=weights_cid,
            manifest_cid=manifest_cid,
            accepted=bool(self.registry.functions.isVersionAccepted(model_id, version).call()),
            tx_hash=receipt["transactionHash"].to_0x_hex(),
            proposal=proposal,
        )

    def _check_owner(self, model_id: int) -> None:
        if not self.registry.functions.exists(model_id).call():
            raise RegistrationError(
                f"model {model_id} does not exist on {self.protocol.deployment.network}"
            )
        owner = self.registry.functions.ownerOf(model_id).call()
        if owner != self.address:
            raise RegistrationError(
                f"model {model_id} is owned by {owner}, not {self.address}: only its owner "
                "publishes versions; pass the owner's key"
            )

    # ----------------------------------------------------------------- terms

    def set_terms(
        self, model_id: int, *, price_per_call: int | None, min_collateral: int | None
    ) -> list[ProposalOutcome]:
        """Change price and/or minimum collateral through the model's governance."""
        if price_per_call is None and min_collateral is None:
            raise RegistrationError("nothing to change: pass --price and/or --min-collateral")
        if not self.registry.functions.exists(model_id).call():
            raise RegistrationError(f"model {model_id} does not exist")
        outcomes = []
        for action, value in ((Action.SET_PRICE, price_per_call),
                              (Action.SET_MIN_COLLATERAL, min_collateral)):  # fmt: skip
            if value is None:
                continue
            if not 0 <= value <= UINT128_MAX:
                raise RegistrationError(f"{value} must be within 0..2^128-1 base units")
            outcomes.append(self.governance.enact(model_id, action, value))
        return outcomes

    # ----------------------------------------------------------------- views

    def lineage(self, model_id: int) -> list[dict[str, int]]:
        """The flattened royalty table: ancestors first, the model itself last (ppb)."""
        ids, weights = self.registry.functions.lineageOf(model_id).call()
        return [{"modelId": int(i), "weightPpb": int(w)} for i, w in zip(ids, weights, strict=True)]

    def show(self, model_id: int) -> ModelView:
        if not self.registry.functions.exists(model_id).call():
            raise RegistrationError(
                f"model {model_id} does not exist on {self.protocol.deployment.network}"
            )
        info = call_struct(self.registry, "modelInfo", model_id)
        versions = []
        for v in range(int(self.registry.functions.versionCount(model_id).call())):
            raw = call_struct(self.registry, "getVersion", model_id, v)
            versions.append({"version": v, "weightsCID": raw["weightsCID"],
                             "manifestCID": raw["manifestCID"],
                             "publishedAt": int(raw["publishedAt"]),
                             "accepted": bool(raw["accepted"])})  # fmt: skip
        return ModelView(
            model_id=model_id,
            owner=str(self.registry.functions.ownerOf(model_id).call()),
            price_per_call=int(info["pricePerCall"]),
            min_collateral=int(info["minCollateral"]),
            licensing_open=bool(info["licensingOpen"]),
            depth=int(info["depth"]),
            royalty_stack_bps=int(info["royaltyStackBps"]),
            parents=[int(p) for p in self.registry.functions.parentsOf(model_id).call()],
            lineage=self.lineage(model_id),
            versions=versions,
        )
