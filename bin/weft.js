#!/usr/bin/env node
// weft's entry point. weft runs its TypeScript sources directly on Node >= 22.18 (type stripping).
// When started by an older Node (e.g. a system Node 20), re-run under the Node 24 that `npm ci`
// installs from the registry's `node` package.
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const [major, minor] = process.versions.node.split(".").map(Number);
if (major < 22 || (major === 22 && minor < 18)) {
  const root = dirname(dirname(fileURLToPath(import.meta.url)));
  const bundled = join(root, "node_modules", "node", "bin", "node");
  if (!existsSync(bundled)) {
    console.error(
      `weft: needs Node.js >= 22.18 (this is ${process.version}); run \`npm ci\` to install Node 24.`,
    );
    process.exit(1);
  }
  const child = spawn(bundled, [fileURLToPath(import.meta.url), ...process.argv.slice(2)], {
    stdio: "inherit",
  });
  for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"]) process.on(sig, () => child.kill(sig));
  child.on("exit", (code, signal) => process.exit(code ?? (signal ? 128 + 15 : 1)));
} else {
  await import("../src/cli/main.ts");
}
