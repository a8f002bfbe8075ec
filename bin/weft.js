#!/usr/bin/env node
// weft's entry point. It runs the JavaScript that `npm run build` emits into dist/ when that build is
// at least as new as every source file, and otherwise the TypeScript sources directly (Node >= 22.18
// strips types itself) — so an edit is never run stale, and a built tree starts faster and smaller.
// When started by an older Node (e.g. a system Node 20), it re-runs itself under the Node 24 that
// `npm ci` installs from the registry's `node` package.
import { spawn } from "node:child_process";
import { existsSync, readdirSync, statSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = dirname(dirname(fileURLToPath(import.meta.url)));
const [major, minor] = process.versions.node.split(".").map(Number);

if (major < 22 || (major === 22 && minor < 18)) {
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
  await import(builtIsFresh() ? "../dist/src/cli/main.js" : "../src/cli/main.ts");
}

function builtIsFresh() {
  if (process.env.WEFT_FROM_SOURCE) return false;
  let stamp;
  try {
    stamp = statSync(join(root, "dist", ".stamp")).mtimeMs;
  } catch {
    return false;
  }
  const newer = (dir) => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const p = join(dir, e.name);
      if (e.isDirectory() ? newer(p) : e.name.endsWith(".ts") && statSync(p).mtimeMs > stamp) return true;
    }
    return false;
  };
  return !newer(join(root, "src")) && !newer(join(root, "demo"));
}
