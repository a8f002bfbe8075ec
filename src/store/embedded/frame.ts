// Record framing for the write-ahead log and the snapshot file:
//
//   [u32 LE payload length][u32 LE CRC-32 of payload][payload: UTF-8 JSON object]
//
// A frame is valid when its length is plausible, it fits in the file, and the CRC matches. Reading stops at
// the first invalid frame. Whether that frame is a torn tail (a write that never completed, so was never
// acknowledged: safe to cut off) or damage in the middle (data after it would be lost: refuse to open) is
// decided by looking for any valid frame at any later byte offset.

import { crc32 } from "node:zlib";
import { StoreError } from "../store.ts";

export const FRAME_HEADER = 8;
/** Sanity bound on one frame; a larger length field is treated as garbage. */
export const MAX_FRAME = 256 * 1024 * 1024;
const OPEN_BRACE = 0x7b;

export function encodeFrame(payload: string): Buffer {
  const body = Buffer.from(payload, "utf8");
  if (body.length === 0 || body.length > MAX_FRAME) {
    throw new RangeError(`record of ${body.length} bytes cannot be framed`);
  }
  const frame = Buffer.allocUnsafe(FRAME_HEADER + body.length);
  frame.writeUInt32LE(body.length, 0);
  frame.writeUInt32LE(crc32(body), 4);
  body.copy(frame, FRAME_HEADER);
  return frame;
}

export interface Frame {
  /** Byte offset of the frame header in the file. */
  offset: number;
  payload: string;
}

export interface ScanResult {
  frames: Frame[];
  /** Length of the valid prefix; anything beyond it is a torn tail. */
  validLength: number;
}

/** Length of the valid frame starting at offset, or 0 if there is none. */
function frameLengthAt(buf: Buffer, offset: number): number {
  if (offset + FRAME_HEADER > buf.length) return 0;
  const len = buf.readUInt32LE(offset);
  if (len === 0 || len > MAX_FRAME || offset + FRAME_HEADER + len > buf.length) return 0;
  // Payloads are JSON objects; checking the first byte skips nearly every CRC of random garbage.
  if (buf[offset + FRAME_HEADER] !== OPEN_BRACE) return 0;
  const body = buf.subarray(offset + FRAME_HEADER, offset + FRAME_HEADER + len);
  return crc32(body) === buf.readUInt32LE(offset + 4) ? FRAME_HEADER + len : 0;
}

function nextValidFrame(buf: Buffer, from: number): number {
  for (let i = from; i + FRAME_HEADER < buf.length; i++) {
    if (frameLengthAt(buf, i) > 0) return i;
  }
  return -1;
}

/**
 * Reads every frame of a file. A bad frame with no valid frame anywhere after it ends the valid prefix;
 * a bad frame followed by a valid one throws StoreError("corrupt") naming the file and offset.
 */
export function scanFrames(buf: Buffer, file: string): ScanResult {
  const frames: Frame[] = [];
  let offset = 0;
  while (offset < buf.length) {
    const len = frameLengthAt(buf, offset);
    if (len === 0) {
      const next = nextValidFrame(buf, offset + 1);
      if (next >= 0) {
        throw new StoreError(
          "corrupt",
          `${file}: invalid record at offset ${offset} is followed by a valid record at offset ${next}; ` +
            `refusing to drop data after it`,
        );
      }
      break;
    }
    frames.push({ offset, payload: buf.toString("utf8", offset + FRAME_HEADER, offset + len) });
    offset += len;
  }
  return { frames, validLength: offset };
}
