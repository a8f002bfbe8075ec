// One write-ahead log file, append-only: wal-<seq>.log, seq counting up from 1. A batch of framed records
// goes down in one positional write followed by one fdatasync; only then may the batch be acknowledged.
// fdatasync also persists the file size, which is all the metadata a reader needs.

import * as fs from "node:fs/promises";
import * as path from "node:path";
import { fsyncDir, io, writeFully } from "./io.ts";

const LOG_NAME = /^wal-(\d{10})\.log$/;

export function logFileName(seq: number): string {
  return `wal-${String(seq).padStart(10, "0")}.log`;
}

/** The sequence number of a log file name, undefined for any other file. */
export function parseLogFileName(name: string): number | undefined {
  const m = LOG_NAME.exec(name);
  return m ? Number(m[1]) : undefined;
}

export class LogFile {
  readonly seq: number;
  readonly path: string;
  private readonly handle: fs.FileHandle;
  private size: number;

  private constructor(seq: number, file: string, handle: fs.FileHandle, size: number) {
    this.seq = seq;
    this.path = file;
    this.handle = handle;
    this.size = size;
  }

  /** Creates a new, empty log and makes its directory entry durable before anything is appended. */
  static async create(dir: string, seq: number): Promise<LogFile> {
    const file = path.join(dir, logFileName(seq));
    const handle = await io(`create log ${file}`, () => fs.open(file, "wx"));
    try {
      await fsyncDir(dir);
    } catch (err) {
      await handle.close().catch(() => {});
      throw err;
    }
    return new LogFile(seq, file, handle, 0);
  }

  /** Opens an existing log whose valid prefix is validLength bytes, cutting off any torn tail durably. */
  static async openForAppend(dir: string, seq: number, validLength: number): Promise<LogFile> {
    const file = path.join(dir, logFileName(seq));
    const handle = await io(`open log ${file}`, () => fs.open(file, "r+"));
    try {
      const { size } = await io(`stat log ${file}`, () => handle.stat());
      if (size !== validLength) {
        await io(`truncate torn tail of ${file}`, async () => {
          await handle.truncate(validLength);
          await handle.datasync();
        });
      }
    } catch (err) {
      await handle.close().catch(() => {});
      throw err;
    }
    return new LogFile(seq, file, handle, validLength);
  }

  get bytes(): number {
    return this.size;
  }

  /** Appends framed records and waits until they are on stable storage. */
  async append(frames: Buffer): Promise<void> {
    await io(`append to ${this.path}`, async () => {
      await writeFully(this.handle, frames, this.size);
      await this.handle.datasync();
    });
    this.size += frames.length;
  }

  async close(): Promise<void> {
    await io(`close ${this.path}`, () => this.handle.close());
  }
}
