// Just enough DER reading for the CA's hot path: walking a CSR that arrived from outside the process.
// Every length is checked against what encloses it, only single-byte tags and definite lengths of at
// most four bytes are accepted, and nothing is copied: an element is a view (tag, where its content
// starts and ends) into the caller's buffer. A malformed input throws DerError, which the caller turns
// into its own error (a CSR that is not readable); it never reads outside the buffer.

export class DerError extends Error {}

export interface DerElement {
  tag: number;
  /** Offset of the tag byte (the element's whole encoding is buf[start, end)). */
  start: number;
  /** Offset of the first content byte. */
  contentStart: number;
  end: number;
}

/** Reads the element at `offset`, which must end by `limit`. */
export function readElement(buf: Uint8Array, offset: number, limit = buf.length): DerElement {
  if (offset + 2 > limit) throw new DerError(`truncated at byte ${offset}`);
  const tag = buf[offset];
  if ((tag & 0x1f) === 0x1f) throw new DerError(`multi-byte tag at byte ${offset}`);
  let len = buf[offset + 1];
  let at = offset + 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    if (n === 0 || n > 4) throw new DerError(`unsupported length form at byte ${offset + 1}`);
    if (at + n > limit) throw new DerError(`truncated length at byte ${offset + 1}`);
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + buf[at + i];
    at += n;
  }
  if (at + len > limit) throw new DerError(`element at byte ${offset} runs past its container`);
  return { tag, start: offset, contentStart: at, end: at + len };
}

/** The elements inside a constructed element, in order; they must fill it exactly. */
export function children(buf: Uint8Array, parent: DerElement): DerElement[] {
  const out: DerElement[] = [];
  for (let at = parent.contentStart; at < parent.end;) {
    const e = readElement(buf, at, parent.end);
    out.push(e);
    at = e.end;
  }
  return out;
}

/** Reads the one element that must make up all of `buf`. */
export function readWhole(buf: Uint8Array): DerElement {
  const e = readElement(buf, 0);
  if (e.end !== buf.length) throw new DerError(`${buf.length - e.end} bytes after the end`);
  return e;
}

/** Expects `e` to carry `tag`. */
export function expectTag(e: DerElement | undefined, tag: number, what: string): DerElement {
  if (!e || e.tag !== tag)
    throw new DerError(
      `${what}: expected tag 0x${tag.toString(16)}, got ${e ? `0x${e.tag.toString(16)}` : "nothing"}`,
    );
  return e;
}

/** The whole encoding of `e` (tag, length and content), as a view. */
export function encodingOf(buf: Uint8Array, e: DerElement): Buffer {
  return Buffer.from(buf.buffer, buf.byteOffset + e.start, e.end - e.start);
}

/** The content of `e`, as a view. */
export function contentOf(buf: Uint8Array, e: DerElement): Buffer {
  return Buffer.from(buf.buffer, buf.byteOffset + e.contentStart, e.end - e.contentStart);
}
