// reviews: what readers said about a product. One program, three versions (the first argument):
//   v1 — reviews only, no stars
//   v2 — asks `ratings` and shows black stars; a few ms slower
//   v3 — asks `ratings` and shows red stars
// When ratings fails, v2/v3 still answer, with the stars left out (graceful degradation).

import type { IncomingMessage } from "node:http";
import { callService, pathOf, sendJson, serve, sleep } from "./lib.ts";

const version = process.argv[2] ?? "v1";
if (!["v1", "v2", "v3"].includes(version)) {
  process.stderr.write(`reviews: unknown version "${version}" (v1, v2 or v3)\n`);
  process.exit(2);
}

const REVIEWS: Record<number, { reviewer: string; text: string }[]> = {
  1: [
    { reviewer: "Reviewer1", text: "An extremely entertaining play by Shakespeare." },
    { reviewer: "Reviewer2", text: "Absolutely fun and entertaining." },
  ],
  2: [{ reviewer: "Reviewer3", text: "Lovely, if confusing." }],
  3: [{ reviewer: "Reviewer4", text: "If music be the food of love, play on." }],
  4: [{ reviewer: "Reviewer5", text: "Such stuff as dreams are made on." }],
};

async function stars(
  id: number,
  from: IncomingMessage,
): Promise<{ color: string; ratings: number[] } | { error: string }> {
  try {
    const r = await callService(`http://ratings/ratings/${id}`, { from });
    if (r.status !== 200) return { error: `ratings answered ${r.status}` };
    return { color: version === "v2" ? "black" : "red", ratings: (r.json as { ratings: number[] }).ratings };
  } catch (err) {
    return { error: `ratings unavailable: ${(err as Error).message}` };
  }
}

serve("reviews", version, async (req, res) => {
  const m = /^\/reviews\/(\d+)$/.exec(pathOf(req));
  if (req.method !== "GET" || !m) return sendJson(res, 404, { error: "try GET /reviews/1" });
  const id = Number(m[1]);
  const body: Record<string, unknown> = { id, version, reviews: REVIEWS[id] ?? [] };
  if (version !== "v1") {
    if (version === "v2") await sleep(3 + Math.random() * 4); // v2 is a little slower
    body.stars = await stars(id, req);
  }
  return sendJson(res, 200, body);
});
