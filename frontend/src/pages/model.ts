// One model: terms, versions (manifest from IPFS), lineage and royalty table, its family tree,
// and the owner's actions (publish a version).

import { html, nothing } from "lit-html";
import type { Address } from "viem";
import type { App, Page } from "../app";
import { FamilyTreeView } from "../components/family-tree";
import { familyNodes, lineageOf, listModels, modelLabel, versionsOf, withNames, type ModelSummary, type Version } from "../data";
import { fetchManifest, gatewayLink, type ManifestResult } from "../lib/ipfs";
import { formatBps, formatPpb, formatTimestamp, formatToken, shortAddress } from "../lib/format";
import type { LineageEntry } from "../lib/royalty";
import { familyOf, layoutFamily } from "../lib/tree";
import { href } from "../router";
import { formValue, Loader } from "./common";

interface Detail {
  model: ModelSummary;
  all: ModelSummary[];
  versions: Version[];
  lineage: LineageEntry[];
  children: ModelSummary[];
  myShares: bigint;
}

export function modelPage(app: App, params: Record<string, string>): Page {
  const id = BigInt(params.id ?? "0");
  const manifests = new Map<string, ManifestResult>();
  const tree = new FamilyTreeView(app, (next) => (location.hash = href.model(next)));
  const detail = new Loader<Detail | null>(app, async () => {
    const all = await listModels(app);
    const model = all.find((m) => m.id === id);
    if (!model) return null;
    void withNames(app, all, () => app.rerender());
    const [versions, lineage, myShares] = await Promise.all([
      versionsOf(app, id, model.versions),
      lineageOf(app, id),
      app.account ? app.read<bigint>("ModelGovernor", "sharesOf", [id, app.account]) : Promise.resolve(0n),
    ]);
    for (const v of versions)
      if (!manifests.has(v.manifestCID))
        void fetchManifest(app.config.ipfsGateway, v.manifestCID).then((r) => {
          manifests.set(v.manifestCID, r);
          app.rerender();
        });
    return { model, all, versions, lineage, myShares, children: all.filter((m) => m.parents.some((p) => p.id === id)) };
  });
  const unwatch = app.wallet.onChange(() => void detail.load());

  const publish = async (e: Event) => {
    e.preventDefault();
    const weights = formValue(e, "weightsCID");
    const manifest = formValue(e, "manifestCID");
    if (!weights || !manifest) return app.flash("Give both the weights CID and the manifest CID.");
    await app.tx({ label: `Publish a version of #${id}`, contract: "ModelRegistry", functionName: "publishVersion", args: [id, weights, manifest] });
  };

  const manifestView = (cid: string) => {
    const r = manifests.get(cid);
    if (!r) return html`<span class="muted">reading manifest…</span>`;
    if (!r.ok) return html`<span class="muted">manifest unavailable (${r.error})</span>`;
    const m = r.manifest;
    return html`<span>${m.name}</span> <small class="muted">${m.architecture ?? ""} · ${m.files} file(s) · ${(m.totalBytes / 1e6).toFixed(1)} MB${m.license ? ` · ${m.license}` : ""}${m.encrypted ? " · encrypted" : ""}</small>`;
  };

  const nameOf = (all: ModelSummary[], mid: bigint) => {
    const m = all.find((x) => x.id === mid);
    return m ? modelLabel(m) : `Model #${mid}`;
  };

  return {
    title: `Model #${id}`,
    dispose: () => {
      detail.dispose();
      unwatch();
    },
    view: () =>
      detail.view((d) => {
        if (!d) return html`<h1>Model #${id}</h1><p class="error" data-testid="model-missing">Model #${id} does not exist. <a href=${href.models()}>See all models</a>.</p>`;
        const { model, all } = d;
        const isOwner = app.account !== null && (app.account as Address).toLowerCase() === model.owner.toLowerCase();
        const family = familyOf(familyNodes(all), id);
        return html`<h1 data-testid="model-title">${modelLabel(model)}</h1>
          <dl class="facts" data-testid="model-facts">
            <dt>Owner</dt><dd title=${model.owner}>${shortAddress(model.owner)}${isOwner ? " (you)" : ""}</dd>
            <dt>Price per call</dt><dd data-testid="model-price">${formatToken(model.info.pricePerCall)}</dd>
            <dt>Min collateral</dt><dd data-testid="model-min-collateral">${formatToken(model.info.minCollateral)}</dd>
            <dt>Licensing</dt><dd><span class="badge ${model.info.licensingOpen ? "ok" : "warn"}" data-testid="model-licensing">${model.info.licensingOpen ? "open" : "paused"}</span></dd>
            <dt>Royalty stack</dt><dd>${formatBps(model.info.royaltyStackBps)} to ${model.info.ancestorCount} ancestor(s), depth ${model.info.depth}</dd>
            <dt>Lineage revenue</dt><dd>${formatToken(model.feesEarned)}</dd>
            <dt>Registered</dt><dd>${formatTimestamp(model.info.registeredAt)}</dd>
            ${d.myShares > 0n ? html`<dt>Your shares</dt><dd>${formatPpb(d.myShares / 10n ** 9n)}</dd>` : nothing}
          </dl>
          <p class="actions">
            <a class="button" href=${href.host()}>Request access as a host</a>
            <a class="button secondary" href=${href.governance(id)}>Governance (price, collateral, licensing)</a>
            <a class="button secondary" href=${href.tree(id)}>Full family tree</a>
          </p>

          <h2>Versions</h2>
          ${d.versions.length === 0
            ? html`<p class="empty" data-testid="no-versions">No version published yet${isOwner ? " — publish one below" : ""}.</p>`
            : html`<div class="table-wrap"><table data-testid="versions-table"><thead><tr><th>#</th><th>Manifest</th><th>Weights CID</th><th>Published</th><th>Accepted</th></tr></thead>
              <tbody>${d.versions.map((v, i) => html`<tr data-testid=${`version-${i}`}>
                <td>${i}</td><td><a href=${gatewayLink(app.config.ipfsGateway, v.manifestCID)} target="_blank" rel="noopener">${manifestView(v.manifestCID)}</a></td>
                <td><code class="cid">${v.weightsCID}</code></td><td>${formatTimestamp(v.publishedAt)}</td>
                <td>${v.accepted ? html`<span class="badge ok">accepted</span>` : html`<span class="badge">awaiting vote</span>`}</td></tr>`)}</tbody></table></div>`}
          ${isOwner
            ? html`<form class="card" data-testid="publish-form" @submit=${publish}>
                <h3>Publish a version</h3>
                <label>Weights CID <input name="weightsCID" required placeholder="bafy…" data-testid="publish-weights" /></label>
                <label>Manifest CID <input name="manifestCID" required placeholder="bafy…" data-testid="publish-manifest" /></label>
                <button type="submit" data-testid="publish-submit">Publish version</button>
                <p class="muted small">Versions are append-only. Version 0 is accepted at once; later ones need the owners' vote.</p>
              </form>`
            : nothing}

          <h2>Lineage and royalty table</h2>
          <p class="muted small">Of every fee's lineage part, each ancestor receives the share below (flattened at registration; paying never walks the tree).</p>
          <div class="table-wrap"><table data-testid="royalty-table"><thead><tr><th>Recipient model</th><th class="num">Share of lineage revenue</th></tr></thead>
            <tbody>${d.lineage.map((e) => html`<tr data-testid=${`royalty-${e.id}`}><td><a href=${href.model(e.id)}>${nameOf(all, e.id)}</a>${e.id === id ? " (itself)" : ""}</td><td class="num">${formatPpb(e.weightPpb)}</td></tr>`)}</tbody></table></div>
          <p>Parents: ${model.parents.length ? model.parents.map((p, i) => html`${i ? ", " : ""}<a href=${href.model(p.id)}>${nameOf(all, p.id)}</a> (${formatBps(p.shareBps)})`) : "none (a root model)"}.
            Derivatives: ${d.children.length ? d.children.map((c, i) => html`${i ? ", " : ""}<a href=${href.model(c.id)}>${modelLabel(c)}</a>`) : "none yet"}.</p>
          ${family && family.members.length > 1 ? html`<h2>Family</h2>${tree.render(layoutFamily(family.members, id, family))}` : nothing}`;
      }, `model #${id}`),
  };
}
