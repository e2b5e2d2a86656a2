// Static server for the built app: serves dist/, the repository's deployments/ folder (so a
// re-deploy needs no rebuild), a /config.json built from the environment, and proxies /ipfs/*
// to the IPFS gateway (same origin: no CORS setup needed on the node).
//
//   node scripts/serve.mjs            # port from OML_FRONTEND_PORT, default 18300
//
// Environment (same names as agents/config.py where they overlap):
//   OML_HOST (127.0.0.1)  OML_ANVIL_PORT (18545)  OML_RPC_URL  OML_CHAIN_ID (31337)
//   OML_IPFS_GATEWAY_PORT (18080)  OML_IPFS_GATEWAY_URL  OML_NETWORK (local)
//   OML_FRONTEND_PORT (18300)  OML_DEPLOYMENTS_DIR (../deployments)  OML_FRONTEND_DIST (dist)
import { createReadStream, existsSync, statSync } from "node:fs";
import { createServer, request as httpRequest } from "node:http";
import { extname, join, normalize, resolve, sep } from "node:path";
import { fileURLToPath } from "node:url";

const HERE = fileURLToPath(new URL(".", import.meta.url));
const FRONTEND = resolve(HERE, "..");

const TYPES = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".mjs": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".json": "application/json; charset=utf-8",
  ".svg": "image/svg+xml",
  ".png": "image/png",
  ".ico": "image/x-icon",
  ".map": "application/json; charset=utf-8",
  ".txt": "text/plain; charset=utf-8",
};

/** Runtime configuration the browser app reads from /config.json. */
export function runtimeConfig(env = process.env) {
  const host = env.OML_HOST || "127.0.0.1";
  const rpcUrl = env.OML_RPC_URL || `http://${host}:${env.OML_ANVIL_PORT || "18545"}`;
  const network = env.OML_NETWORK || "local";
  if (!/^[A-Za-z0-9_-]+$/.test(network)) throw new Error(`OML_NETWORK "${network}" is not a plain name`);
  return {
    rpcUrl,
    chainId: Number(env.OML_CHAIN_ID || "31337"),
    chainName: env.OML_CHAIN_NAME || (network === "local" ? "OML local (Anvil)" : network),
    deployment: `/deployments/${network}.json`,
    ipfsGateway: "/ipfs/",
    confirmations: Number(env.OML_CONFIRMATIONS || "1"),
    pollingIntervalMs: Number(env.OML_POLLING_MS || "1000"),
  };
}

export function gatewayUrl(env = process.env) {
  const host = env.OML_HOST || "127.0.0.1";
  return env.OML_IPFS_GATEWAY_URL || `http://${host}:${env.OML_IPFS_GATEWAY_PORT || "18080"}`;
}

/** Resolve `rel` inside `root`, or null when it would escape it. */
function inside(root, rel) {
  const path = normalize(join(root, rel));
  return path === root || path.startsWith(root + sep) ? path : null;
}

function sendFile(res, path, cache) {
  res.writeHead(200, {
    "content-type": TYPES[extname(path)] || "application/octet-stream",
    "cache-control": cache,
  });
  createReadStream(path).pipe(res);
}

function notFound(res, what) {
  res.writeHead(404, { "content-type": "text/plain; charset=utf-8" });
  res.end(`not found: ${what}\n`);
}

/**
 * A request handler usable standalone or as Vite middleware (`next` given: unknown paths fall
 * through to Vite instead of the SPA fallback).
 */
export function createHandler(env = process.env, { withDist = true } = {}) {
  const deployments = resolve(env.OML_DEPLOYMENTS_DIR || join(FRONTEND, "..", "deployments"));
  const dist = resolve(env.OML_FRONTEND_DIST || join(FRONTEND, "dist"));
  const config = JSON.stringify(runtimeConfig(env));
  const gateway = new URL(gatewayUrl(env));

  return (req, res, next) => {
    const url = new URL(req.url || "/", "http://localhost");
    const path = decodeURIComponent(url.pathname);
    if (path === "/config.json") {
      res.writeHead(200, { "content-type": TYPES[".json"], "cache-control": "no-store" });
      res.end(config);
      return;
    }
    if (path.startsWith("/deployments/")) {
      // ABIs and addresses only: JSON files, no directory listings, no escaping the folder.
      const file = inside(deployments, path.slice("/deployments/".length));
      if (!file || extname(file) !== ".json" || !existsSync(file) || !statSync(file).isFile()) {
        notFound(res, path);
        return;
      }
      sendFile(res, file, "no-store");
      return;
    }
    if (path.startsWith("/ipfs/")) {
      if (!/^\/ipfs\/[A-Za-z0-9]+(\/[A-Za-z0-9._~\-/]*)?$/.test(path)) {
        notFound(res, path);
        return;
      }
      const upstream = httpRequest(
        { hostname: gateway.hostname, port: gateway.port || 80, path: url.pathname, method: "GET", timeout: 15000 },
        (up) => {
          res.writeHead(up.statusCode || 502, {
            "content-type": up.headers["content-type"] || "application/octet-stream",
            "cache-control": up.statusCode === 200 ? "public, max-age=31536000, immutable" : "no-store",
          });
          up.pipe(res);
        },
      );
      upstream.on("timeout", () => upstream.destroy(new Error("IPFS gateway timed out")));
      upstream.on("error", (error) => {
        if (!res.headersSent) res.writeHead(502, { "content-type": "text/plain; charset=utf-8" });
        res.end(`IPFS gateway unreachable: ${error.message}\n`);
      });
      upstream.end();
      return;
    }
    if (!withDist) {
      next?.();
      return;
    }
    const file = inside(dist, path === "/" ? "index.html" : path.slice(1));
    if (file && existsSync(file) && statSync(file).isFile()) {
      sendFile(res, file, path.startsWith("/assets/") ? "public, max-age=31536000, immutable" : "no-cache");
      return;
    }
    if (extname(path)) {
      notFound(res, path);
      return;
    }
    const index = join(dist, "index.html");
    if (!existsSync(index)) {
      res.writeHead(500, { "content-type": "text/plain; charset=utf-8" });
      res.end("frontend not built: run `npm run build` in frontend/\n");
      return;
    }
    sendFile(res, index, "no-cache");
  };
}

/** Start a server; resolves with its base URL. Port 0 picks a free one. */
export function serve(env = process.env, port = Number(env.OML_FRONTEND_PORT || "18300")) {
  const host = env.OML_FRONTEND_HOST || "127.0.0.1";
  const server = createServer(createHandler(env));
  return new Promise((resolvePromise, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => {
      const address = server.address();
      const actual = typeof address === "object" && address ? address.port : port;
      resolvePromise({ url: `http://${host}:${actual}/`, server });
    });
  });
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const { url } = await serve();
  const config = runtimeConfig();
  console.log(`OML Hub frontend: ${url}  (rpc ${config.rpcUrl}, chain ${config.chainId}, ${config.deployment}, ipfs ${gatewayUrl()})`);
}
