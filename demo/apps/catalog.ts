// catalog: the product list. GET /products, GET /products/:id.

import { pathOf, sendJson, serve } from "./lib.ts";

export const PRODUCTS = [
  { id: 1, title: "The Comedy of Errors", author: "William Shakespeare", price: 12.5 },
  { id: 2, title: "A Midsummer Night's Dream", author: "William Shakespeare", price: 9.9 },
  { id: 3, title: "Twelfth Night", author: "William Shakespeare", price: 11.0 },
  { id: 4, title: "The Tempest", author: "William Shakespeare", price: 14.25 },
];

serve("catalog", "v1", (req, res) => {
  const path = pathOf(req);
  if (req.method !== "GET") return sendJson(res, 405, { error: "only GET" });
  if (path === "/products") return sendJson(res, 200, { products: PRODUCTS });
  const m = /^\/products\/(\d+)$/.exec(path);
  const product = m && PRODUCTS.find((p) => p.id === Number(m[1]));
  if (product) return sendJson(res, 200, product);
  return sendJson(res, 404, { error: `no product at ${path}` });
});
