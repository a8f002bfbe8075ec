// Who may talk to the admin port. It listens on loopback, but a browser on the same machine can still
// reach it: any web page can send a "simple" cross-site POST (no CORS preflight), and a page whose
// name is rebound to 127.0.0.1 (DNS rebinding) can read the answers to its GETs. So, on every route:
//   1. Host must name this server — a loopback name or the address it is bound to, with no port or
//      the admin port — else 421. A rebound page always sends its own name as Host.
//   2. A request from a page of another origin is refused (403): Origin, when present, must be this
//      server's own origin, and Sec-Fetch-Site, when present, `same-origin` or `none`.
//   3. State changes (POST /drain) need `Authorization: Bearer <admin token>`, compared in constant
//      time, else 401. A browser cannot learn the token: it is only in a 0600 file.
// No CORS headers are ever sent, so no other origin may read a response.

import { createHash, timingSafeEqual } from "node:crypto";
import type { IncomingMessage } from "node:http";

export type GuardVerdict = { ok: true } | { ok: false; status: 401 | 403 | 421; reason: string };

const LOOPBACK_NAMES = ["localhost", "127.0.0.1", "[::1]"];
const TRUSTED_FETCH_SITES = new Set(["same-origin", "none"]);

function sha256(s: string): Buffer {
  return createHash("sha256").update(s).digest();
}

export class AdminGuard {
  readonly #tokenHash: Buffer;
  #names = new Set(LOOPBACK_NAMES);
  #port = 0;

  constructor(token: string) {
    if (token.length < 16) throw new Error("the admin token must be at least 16 characters");
    this.#tokenHash = sha256(token);
  }

  /** Called once the server listens: its address is an accepted Host name, its port the only port. */
  bound(address: string, port: number): void {
    const names = new Set(LOOPBACK_NAMES);
    if (address !== "0.0.0.0" && address !== "::")
      names.add(address.includes(":") ? `[${address}]` : address);
    this.#names = names;
    this.#port = port;
  }

  check(req: IncomingMessage, needsToken: boolean): GuardVerdict {
    const host = req.headers.host;
    // HTTP/1.1 requires Host (Node refuses a request without one); a browser always sends it.
    if (host !== undefined && !this.#isOwnHost(host.toLowerCase()))
      return {
        ok: false,
        status: 421,
        reason: "Host does not name this admin server (use 127.0.0.1 or localhost)",
      };
    const origin = req.headers.origin;
    if (origin !== undefined && !this.#isOwnOrigin(origin.toLowerCase()))
      return { ok: false, status: 403, reason: "requests from another origin are refused" };
    const site = req.headers["sec-fetch-site"];
    if (typeof site === "string" && !TRUSTED_FETCH_SITES.has(site.toLowerCase()))
      return { ok: false, status: 403, reason: "requests from another site are refused" };
    if (!needsToken) return { ok: true };
    const auth = req.headers.authorization;
    const m = auth === undefined ? null : /^bearer +(\S+) *$/i.exec(auth);
    if (!m)
      return {
        ok: false,
        status: 401,
        reason:
          "needs the admin token: send `Authorization: Bearer <token>` (the proxy writes it to its admin token file)",
      };
    if (!timingSafeEqual(sha256(m[1]), this.#tokenHash))
      return { ok: false, status: 401, reason: "wrong admin token" };
    return { ok: true };
  }

  #isOwnHost(host: string): boolean {
    const colon = host.lastIndexOf(":");
    const bracket = host.lastIndexOf("]");
    if (colon > bracket) {
      const port = host.slice(colon + 1);
      if (port !== String(this.#port)) return false;
      host = host.slice(0, colon);
    }
    return this.#names.has(host);
  }

  #isOwnOrigin(origin: string): boolean {
    if (!origin.startsWith("http://")) return false;
    const host = origin.slice("http://".length);
    return host.includes(":") && !host.endsWith("]") && this.#isOwnHost(host);
  }
}
