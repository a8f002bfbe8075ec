// What an idle Node process costs in RSS on this machine, as context for the proxies' RSS figures:
// an empty script, and the same script as a .ts file (type stripping loads a WebAssembly transformer).

import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { memoryKb, sleep, spawnPinned } from "./proc.ts";

const SCRIPT = `console.log("idle"); setTimeout(() => {}, 30_000);\n`;

async function idleRssMb(file: string, core: number): Promise<number> {
  const child = spawnPinned(`idle ${file}`, core, process.execPath, [file]);
  try {
    await child.waitFor(/idle/, 10_000);
    await sleep(500);
    return Math.round((memoryKb([child.pid]).rss / 1024) * 10) / 10;
  } finally {
    await child.stop();
  }
}

export async function nodeBaselineRss(
  workDir: string,
  core: number,
): Promise<{ emptyJsMb: number; emptyTsMb: number }> {
  const dir = join(workDir, "baseline");
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, "idle.mjs"), SCRIPT);
  writeFileSync(join(dir, "idle.ts"), SCRIPT);
  return {
    emptyJsMb: await idleRssMb(join(dir, "idle.mjs"), core),
    emptyTsMb: await idleRssMb(join(dir, "idle.ts"), core),
  };
}
