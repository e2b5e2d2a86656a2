// Entry point: load runtime config + deployment, then route hash changes to page modules.

import { html, nothing, render } from "lit-html";
import { App, txListView, walletView, type Page, type PageFactory } from "./app";
import { fetchJson, loadDeployment, parseRuntimeConfig } from "./lib/config";
import { href, parseRoute } from "./router";
import { modelsPage } from "./pages/models";
import { modelPage } from "./pages/model";
import { treePage } from "./pages/tree";
import { createPage } from "./pages/create";
import { hostPage } from "./pages/host";
import { earningsPage } from "./pages/earnings";
import { challengesPage } from "./pages/challenges";
import { governancePage } from "./pages/governance";
import "./style.css";

const PAGES: Record<string, PageFactory> = {
  models: modelsPage,
  model: modelPage,
  tree: treePage,
  create: createPage,
  host: hostPage,
  earnings: earningsPage,
  challenges: challengesPage,
  governance: governancePage,
};

const NAV: [string, string, string][] = [
  ["models", href.models(), "Models"],
  ["tree", href.tree(), "Family tree"],
  ["create", href.create(), "Create"],
  ["host", href.host(), "Host"],
  ["earnings", href.earnings(), "Earnings"],
  ["challenges", href.challenges(), "Challenges"],
  ["governance", href.governance(), "Governance"],
];

const root = document.getElementById("app") as HTMLElement;

function fatal(message: string): void {
  render(
    html`<main class="fatal" data-testid="fatal"><h1>OML Hub cannot start</h1><p>${message}</p>
      <p>Check that the chain is running and the protocol is deployed (<code>make demo</code>), then reload.</p></main>`,
    root,
  );
}

async function start(): Promise<void> {
  root.replaceChildren(); // the static "Loading…" paragraph: lit-html renders beside, not over, it
  render(html`<p class="loading">Loading OML Hub…</p>`, root);
  let app: App;
  try {
    const config = parseRuntimeConfig(await fetchJson("/config.json"));
    const deployment = await loadDeployment(config);
    app = new App(config, deployment, () => draw());
  } catch (error) {
    fatal((error as Error).message);
    return;
  }
  let routeName = "";
  let page: Page | null = null;

  const draw = (): void => {
    if (!page) return;
    const current = page;
    render(
      html`<header class="top">
          <a class="brand" href=${href.models()}>OML Hub</a>
          <nav aria-label="Main">
            ${NAV.map(([name, link, label]) => html`<a href=${link} class=${name === routeName ? "active" : ""} data-testid=${`nav-${name}`}>${label}</a>`)}
          </nav>
          <div class="wallet">${walletView(app)}</div>
        </header>
        ${app.flashMessage
          ? html`<p class="flash error" role="alert" data-testid="flash">${app.flashMessage} <button class="link" @click=${() => app.flash(null)}>dismiss</button></p>`
          : nothing}
        <main data-testid=${`page-${routeName}`}>${current.view()}</main>
        ${txListView(app)}
        <footer>${app.config.chainName} · chain ${app.config.chainId} · deployment “${app.deployment.network}”</footer>`,
      root,
    );
  };

  const route = (): void => {
    const { name, params } = parseRoute(location.hash);
    page?.dispose?.();
    app.flashMessage = null; // a message belongs to the page it was about
    routeName = name;
    const factory = PAGES[name];
    page = factory
      ? factory(app, params)
      : { title: "Not found", view: () => html`<h1>Not found</h1><p>No page at “${params.path}”. <a href=${href.models()}>See the models</a>.</p>` };
    document.title = `${page.title} · OML Hub`;
    draw();
  };
  window.addEventListener("hashchange", route);
  route();
  await app.wallet.restore();
}

void start();
