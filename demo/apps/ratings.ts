// ratings: stars per product. About 1% of requests fail with 503 (WEFT_DEMO_RATINGS_FAILURE overrides
// the fraction), so the summary has a non-perfect success rate to show.

import { pathOf, sendJson, serve } from "./lib.ts";

const failure = Number(process.env.WEFT_DEMO_RATINGS_FAILURE ?? "0.01");
const RATINGS: Record<number, number[]> = { 1: [5, 4], 2: [4, 4, 3], 3: [5], 4: [3, 4] };

serve("ratings", "v1", (req, res) => {
  const m = /^\/ratings\/(\d+)$/.exec(pathOf(req));
  if (req.method !== "GET" || !m) return sendJson(res, 404, { error: "try GET /ratings/1" });
  if (Math.random() < failure) return sendJson(res, 503, { error: "ratings database is busy (simulated)" });
  const stars = RATINGS[Number(m[1])] ?? [];
  return sendJson(res, 200, { id: Number(m[1]), ratings: stars });
});
