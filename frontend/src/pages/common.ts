// Small helpers shared by pages: async loading state, chain clock, form reading.

import { html, nothing, type TemplateResult } from "lit-html";
import type { App } from "../app";

/** Loads data, keeps the last good value, reloads after every confirmed transaction. */
export class Loader<T> {
  data: T | null = null;
  error: string | null = null;
  loading = false;
  private unsubscribe: () => void;
  private disposed = false;

  constructor(
    private readonly app: App,
    private readonly fetcher: () => Promise<T>,
  ) {
    this.unsubscribe = app.onReload(() => void this.load());
    void this.load();
  }

  async load(): Promise<void> {
    this.loading = true;
    this.app.rerender();
    try {
      const data = await this.fetcher();
      if (this.disposed) return;
      this.data = data;
      this.error = null;
    } catch (error) {
      if (this.disposed) return;
      this.error = this.app.explain(error);
    } finally {
      this.loading = false;
      this.app.rerender();
    }
  }

  dispose(): void {
    this.disposed = true;
    this.unsubscribe();
  }

  /** Render data, or the loading / error state in words. */
  view(render: (data: T) => TemplateResult, what = "data"): TemplateResult {
    if (this.error && this.data === null)
      return html`<p class="error" data-testid="load-error">Could not load ${what}: ${this.error} <button class="link" @click=${() => void this.load()}>retry</button></p>`;
    if (this.data === null) return html`<p class="muted" data-testid="loading">Loading ${what}…</p>`;
    return html`${this.error ? html`<p class="error">Refresh failed: ${this.error}</p>` : nothing}${render(this.data)}`;
  }
}

/** Chain time (latest block timestamp) advanced by the local clock, for countdowns. */
export class ChainClock {
  private base = 0;
  private fetchedAt = 0;
  private timer: ReturnType<typeof setInterval>;

  constructor(private readonly app: App) {
    void this.sync();
    this.timer = setInterval(() => app.rerender(), 1000);
  }

  async sync(): Promise<void> {
    try {
      const block = await this.app.client.getBlock({ blockTag: "latest" });
      this.base = Number(block.timestamp);
      this.fetchedAt = Date.now();
    } catch {
      // Keep the previous reading; countdowns say "—" until the first one.
    }
  }

  get now(): number {
    return this.base ? this.base + Math.floor((Date.now() - this.fetchedAt) / 1000) : Math.floor(Date.now() / 1000);
  }

  dispose(): void {
    clearInterval(this.timer);
  }
}

/** Read a named field of the form an event came from. */
export function formValue(event: Event, name: string): string {
  const form = (event.target as HTMLElement).closest("form") as HTMLFormElement;
  const element = form.elements.namedItem(name) as HTMLInputElement | HTMLSelectElement | null;
  return element?.value.trim() ?? "";
}

export function needsWallet(app: App, action: string): TemplateResult | typeof nothing {
  if (!app.wallet.state.provider) return html`<p class="notice" data-testid="read-only">Read-only: install a browser wallet to ${action}.</p>`;
  if (!app.account) return html`<p class="notice" data-testid="read-only">Connect your wallet to ${action}.</p>`;
  return nothing;
}
