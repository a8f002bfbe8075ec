// Preloaded into a weft process under test (NODE_OPTIONS="--expose-gc --import=<this file>"): on
// SIGUSR2 it collects garbage and prints its memory on stderr as `weft-heap <n> {json}`, so a test can
// see what a real control plane or sidecar still holds after a workload (heap-probe-client.ts reads it).

let seq = 0;
process.on("SIGUSR2", () => {
  const gc = (globalThis as { gc?: () => void }).gc;
  // Several passes: weak references and finalizers free more on the second and third.
  for (let i = 0; i < 3; i++) gc?.();
  const m = process.memoryUsage();
  const sample = { heapUsed: m.heapUsed, heapTotal: m.heapTotal, rss: m.rss, external: m.external };
  process.stderr.write(`weft-heap ${seq++} ${JSON.stringify(sample)}\n`);
});
