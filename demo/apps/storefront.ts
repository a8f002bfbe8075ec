// storefront: the page users see. GET / (or /products/:id) asks `catalog` for the product and
// `reviews` (port 9080) for its reviews, in parallel, and returns both as one small JSON page.
// Without the catalog there is no page (502); without reviews the page says they are unavailable.

import { callService, pathOf, sendJson, serve } from "./lib.ts";

let next = 0;

serve("storefront", "v1", async (req, res) => {
  const path = pathOf(req);
  const m = /^\/products\/(\d+)$/.exec(path);
  if (req.method !== "GET" || (path !== "/" && !m)) return sendJson(res, 404, { error: "try GET /" });
  const id = m ? Number(m[1]) : (next++ % 4) + 1;
  const [product, reviews] = await Promise.allSettled([
    callService(`http://catalog/products/${id}`, { from: req }),
    callService(`http://reviews:9080/reviews/${id}`, { from: req }),
  ]);
  if (product.status === "rejected" || product.value.status !== 200) {
    const why = product.status === "rejected" ? String(product.reason?.message) : explain(product.value);
    return sendJson(res, 502, { error: `catalog: ${why}` });
  }
  const page: Record<string, unknown> = { page: "product", product: product.value.json };
  if (reviews.status === "fulfilled" && reviews.value.status === 200) page.reviews = reviews.value.json;
  else
    page.reviews = {
      error: reviews.status === "rejected" ? String(reviews.reason?.message) : explain(reviews.value),
    };
  return sendJson(res, 200, page);
});

/** A failed call, with the sidecar's own error code when the proxy produced the error. */
function explain(r: { status: number; headers: Record<string, unknown> }): string {
  const code = r.headers["x-weft-error"];
  return `HTTP ${r.status}${code ? ` (${String(code)})` : ""}`;
}
