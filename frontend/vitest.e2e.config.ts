import { defineConfig } from "vitest/config";

// Browser tests: one real chromium, one Anvil, the built app. Sequential and slow by nature.
export default defineConfig({
  test: {
    include: ["e2e/**/*.e2e.ts"],
    environment: "node",
    testTimeout: 180_000,
    hookTimeout: 180_000,
    fileParallelism: false,
    sequence: { concurrent: false },
    reporters: ["verbose"],
  },
});
