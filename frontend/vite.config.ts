import { defineConfig } from "vitest/config";
import { createHandler } from "./scripts/serve.mjs";
import type { IncomingMessage, ServerResponse } from "node:http";

type Handler = (req: IncomingMessage, res: ServerResponse, next?: () => void) => void;

// `vite` (dev) and `vite preview` serve the same /config.json, /deployments and /ipfs routes as
// scripts/serve.mjs, so the app never has addresses or URLs baked in at build time.
export default defineConfig({
  base: "/",
  build: { target: "es2022", sourcemap: true, chunkSizeWarningLimit: 800 },
  plugins: [
    {
      name: "oml-runtime-routes",
      configureServer(server) {
        server.middlewares.use(createHandler(process.env, { withDist: false }) as Handler);
      },
      configurePreviewServer(server) {
        server.middlewares.use(createHandler(process.env, { withDist: false }) as Handler);
      },
    },
  ],
  test: {
    include: ["tests/**/*.test.ts"],
    environment: "node",
  },
});
