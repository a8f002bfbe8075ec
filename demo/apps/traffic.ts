// traffic: steady demo load. Sends GET http://storefront/ through its own sidecar at a fixed rate
// (WEFT_DEMO_RPS, default 20 per second), never more than MAX_IN_FLIGHT at once, so a slow or broken
// mesh makes it skip requests instead of piling them up. Every 10th request comes from the user
// "jason" (header x-demo-user: jason), for routes that match on it (demo/try/reviews-by-header.yaml).
// Logs a tally every 10 s.

import { callService, serve } from "./lib.ts";

const rps = Math.max(0.1, Number(process.env.WEFT_DEMO_RPS ?? "20"));
const MAX_IN_FLIGHT = 50;
/** Every JASON_EVERY-th request carries `x-demo-user: jason`. */
const JASON_EVERY = 10;
const target = process.env.WEFT_DEMO_TARGET ?? "http://storefront/";

let inFlight = 0;
const tally = { sent: 0, ok: 0, failed: 0, skipped: 0 };
const codes = new Map<string, number>();

function count(key: string): void {
  codes.set(key, (codes.get(key) ?? 0) + 1);
}

function fire(): void {
  if (inFlight >= MAX_IN_FLIGHT) {
    tally.skipped++;
    return;
  }
  inFlight++;
  tally.sent++;
  const headers: Record<string, string> = tally.sent % JASON_EVERY === 0 ? { "x-demo-user": "jason" } : {};
  callService(target, { timeoutMs: 5000, headers })
    .then((r) => {
      if (r.status < 500) tally.ok++;
      else tally.failed++;
      const err = r.headers["x-weft-error"];
      count(err ? `${r.status} ${String(err)}` : String(r.status));
    })
    .catch((err: Error) => {
      tally.failed++;
      count(err.message.slice(0, 60));
    })
    .finally(() => inFlight--);
}

// The app port only answers /healthz: `weft run` needs an app to front.
serve("traffic", "v1", (_req, res) => {
  res.writeHead(404).end();
});

const timer = setInterval(fire, 1000 / rps);
const report = setInterval(() => {
  const top = [...codes.entries()].map(([k, n]) => `${k}×${n}`).join(" ");
  console.log(
    `traffic → ${target}: sent ${tally.sent}, ok ${tally.ok}, failed ${tally.failed}, skipped ${tally.skipped} [${top}]`,
  );
}, 10_000);
process.once("SIGTERM", () => {
  clearInterval(timer);
  clearInterval(report);
});
console.log(`traffic: ${rps} req/s to ${target} via ${process.env.HTTP_PROXY ?? "(no proxy)"}`);
