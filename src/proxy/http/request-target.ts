// The request-target forms a proxy meets (RFC 9112 §3.2): origin-form "/path?q" (the usual), and
// absolute-form "http://authority/path?q" (what clients send through HTTP_PROXY). Absolute-form is
// forwarded as origin-form with Host set from the authority.

export interface AbsoluteTarget {
  authority: string;
  /** Origin-form remainder: "/path?q", "/" when the URL had no path. */
  target: string;
}

/** Parses absolute-form; `scheme` "https" and malformed targets are reported, not thrown. */
export function parseAbsoluteForm(url: string): AbsoluteTarget | { error: "https" | "malformed" } {
  const sep = url.indexOf("://");
  if (sep <= 0) return { error: "malformed" };
  const scheme = url.slice(0, sep).toLowerCase();
  if (scheme === "https") return { error: "https" };
  if (scheme !== "http") return { error: "malformed" };
  const start = sep + 3;
  let end = start;
  while (end < url.length) {
    const c = url.charCodeAt(end);
    if (c === 47 /* / */ || c === 63 /* ? */ || c === 35 /* # */) break;
    end++;
  }
  const authority = url.slice(start, end);
  if (authority === "" || authority.includes("@")) return { error: "malformed" };
  const rest = url.slice(end);
  const target = rest === "" ? "/" : rest.charCodeAt(0) === 63 ? `/${rest}` : rest;
  if (target.charCodeAt(0) !== 47) return { error: "malformed" };
  return { authority, target };
}

/** X-Forwarded-For: the client's list with the address we received the request from appended. */
export function appendForwardedFor(
  existing: string | undefined,
  address: string | undefined,
): string | undefined {
  if (address === undefined) return existing;
  return existing === undefined ? address : `${existing}, ${address}`;
}
