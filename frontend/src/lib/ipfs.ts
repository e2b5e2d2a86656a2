// Manifests from IPFS through the configured gateway (same-origin proxy by default). Content is
// addressed by CID, so a successful fetch is cached for the page's lifetime.

export interface ManifestSummary {
  name: string;
  architecture?: string;
  license?: string;
  tokenizer?: string;
  files: number;
  totalBytes: number;
  parents: number;
  encrypted: boolean;
}

export type ManifestResult = { ok: true; manifest: ManifestSummary } | { ok: false; error: string };

const cache = new Map<string, Promise<ManifestResult>>();

/** Read the fields the UI shows from a manifest document (schema_version 1). */
export function summarizeManifest(doc: unknown): ManifestResult {
  if (!doc || typeof doc !== "object") return { ok: false, error: "not a JSON object" };
  const d = doc as Record<string, unknown>;
  if (d.schema_version !== 1) return { ok: false, error: `not an OML manifest (schema_version ${String(d.schema_version)})` };
  if (typeof d.name !== "string" || !d.name) return { ok: false, error: "manifest has no name" };
  const files = Array.isArray(d.files) ? (d.files as { size?: unknown }[]) : [];
  const str = (v: unknown) => (typeof v === "string" ? v : undefined);
  return {
    ok: true,
    manifest: {
      name: d.name,
      architecture: str(d.architecture),
      license: str(d.license),
      tokenizer: str(d.tokenizer),
      files: files.length,
      totalBytes: files.reduce((sum, f) => sum + (typeof f.size === "number" ? f.size : 0), 0),
      parents: Array.isArray(d.parents) ? d.parents.length : 0,
      encrypted: d.encryption != null,
    },
  };
}

export function gatewayLink(gateway: string, cid: string): string {
  return `${gateway.replace(/\/?$/, "/")}${encodeURIComponent(cid)}`;
}

export function fetchManifest(gateway: string, cid: string, timeoutMs = 8000): Promise<ManifestResult> {
  const key = `${gateway}|${cid}`;
  const cached = cache.get(key);
  if (cached) return cached;
  const promise = (async (): Promise<ManifestResult> => {
    if (!/^[A-Za-z0-9]+$/.test(cid)) return { ok: false, error: `"${cid}" is not a CID` };
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), timeoutMs);
    try {
      const response = await fetch(gatewayLink(gateway, cid), { signal: controller.signal });
      if (!response.ok) return { ok: false, error: `IPFS gateway answered HTTP ${response.status}` };
      const text = await response.text();
      try {
        return summarizeManifest(JSON.parse(text));
      } catch {
        return { ok: false, error: "the content is not JSON" };
      }
    } catch (error) {
      return { ok: false, error: (error as Error).name === "AbortError" ? "IPFS did not answer in time" : "IPFS gateway unreachable" };
    } finally {
      clearTimeout(timer);
    }
  })();
  cache.set(key, promise);
  // Failures are retried on the next visit; only content is cached for good.
  void promise.then((r) => {
    if (!r.ok) cache.delete(key);
  });
  return promise;
}
