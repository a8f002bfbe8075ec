// What a request contributes to consistent hashing (RingHash, Maglev): one header's value, one
// cookie's value, or the address the request came from. No value (header or cookie absent) means
// no key: the set then picks at random, as Envoy does, rather than sending every key-less request
// to the one endpoint that owns the hash of "".

/** Where a hash key comes from (ClusterPolicy.loadBalancer.hashOn): exactly one is set. */
export interface HashOn {
  header?: string;
  cookie?: string;
  sourceAddress?: boolean;
}

export function hashKeyOf(
  hashOn: HashOn,
  req: { header(name: string): string | undefined },
  sourceAddress: string | undefined,
): string | undefined {
  // Node stores header names lower-case; a name that already is comes back without a copy.
  if (hashOn.header !== undefined) return req.header(hashOn.header.toLowerCase());
  if (hashOn.cookie !== undefined) {
    const cookies = req.header("cookie");
    return cookies === undefined ? undefined : cookieValue(cookies, hashOn.cookie);
  }
  if (hashOn.sourceAddress === true) return sourceAddress;
  return undefined;
}

/**
 * The value of cookie `name` in a Cookie header ("a=1; b=2"), or undefined. Names are
 * case-sensitive (RFC 6265). Several Cookie headers arrive joined with ", " or "; ", so both
 * separate pairs. A value in double quotes is returned without them; the first occurrence wins.
 */
export function cookieValue(header: string, name: string): string | undefined {
  const n = header.length;
  let i = 0;
  while (i < n) {
    // Skip separators and whitespace before the pair.
    let c = header.charCodeAt(i);
    while (i < n && (c === 0x20 || c === 0x09 || c === 0x3b || c === 0x2c)) c = header.charCodeAt(++i);
    let end = i;
    while (end < n && (c = header.charCodeAt(end)) !== 0x3b && c !== 0x2c) end++;
    const eq = header.indexOf("=", i);
    if (eq !== -1 && eq < end && header.slice(i, eq).trimEnd() === name) {
      let value = header.slice(eq + 1, end).trim();
      if (value.length >= 2 && value.startsWith('"') && value.endsWith('"')) value = value.slice(1, -1);
      return value;
    }
    i = end + 1;
  }
  return undefined;
}
