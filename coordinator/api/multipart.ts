import busboy from 'busboy';
import type { Context } from 'koa';
import { badRequest, PodsError } from '../../shared/errors.js';
import { CHUNK_BYTES } from '../../shared/storage.js';

export interface Received {
  fields: Record<string, string>;
  filename: string;
  bytes: number;
}

/**
 * Read a multipart/form-data upload: the `file` part is handed to `onChunk` in order, in
 * pieces of CHUNK_BYTES (the last may be shorter), while it arrives; other parts are small
 * text fields. Bad input is a 400 or 413 PodsError; `onChunk` may throw to stop the upload.
 */
export async function receiveFile(ctx: Context, opts: { maxBytes: number; onChunk: (data: Buffer) => Promise<void> }): Promise<Received> {
  const type = ctx.get('content-type');
  if (!/^multipart\/form-data\b/i.test(type)) throw new PodsError('UNSUPPORTED_MEDIA_TYPE', 'the upload must be multipart/form-data with a "file" part');
  let parser: busboy.Busboy;
  try {
    parser = busboy({ headers: ctx.req.headers, limits: { fileSize: opts.maxBytes, files: 8, fields: 16, fieldSize: 64 * 1024 } });
  } catch (err) {
    throw badRequest(`bad multipart body: ${(err as Error).message}`);
  }
  const fields: Record<string, string> = {};
  let file: Promise<{ filename: string; bytes: number }> | null = null;
  parser.on('field', (name, value) => {
    fields[name] = value;
  });
  parser.on('file', (name, stream, info) => {
    if (name !== 'file' || file) {
      // Python's requests sends every part of `files=` as a file, `dest_path` too: read it as a field.
      const parts: Buffer[] = [];
      let size = 0;
      stream.on('data', (d: Buffer) => {
        size += d.length;
        if (size <= 64 * 1024) parts.push(d);
      });
      stream.on('end', () => {
        if (name !== 'file' && size <= 64 * 1024) fields[name] = Buffer.concat(parts).toString('utf8');
      });
      return;
    }
    file = (async () => {
      let pending: Buffer[] = [];
      let size = 0;
      let bytes = 0;
      // After a failure the rest of the part is read and dropped: breaking out of the loop
      // would destroy the part's stream, and the parser would wait for it forever.
      let failed: unknown = null;
      for await (const piece of stream as AsyncIterable<Buffer>) {
        if (failed) continue;
        try {
          pending.push(piece);
          size += piece.length;
          bytes += piece.length;
          while (size >= CHUNK_BYTES) {
            const all = Buffer.concat(pending);
            await opts.onChunk(all.subarray(0, CHUNK_BYTES));
            pending = [all.subarray(CHUNK_BYTES)];
            size = pending[0]!.length;
          }
        } catch (err) {
          failed = err;
        }
      }
      if (failed) throw failed;
      if ((stream as unknown as { truncated: boolean }).truncated) throw new PodsError('PAYLOAD_TOO_LARGE', `the file is larger than ${opts.maxBytes} bytes; nothing was written`);
      if (size > 0) await opts.onChunk(Buffer.concat(pending));
      return { filename: info.filename ?? '', bytes };
    })();
    // Errors surface when `file` is awaited, after the whole body is read.
    file.catch(() => undefined);
  });
  const finished = new Promise<void>((resolve, reject) => {
    parser.on('close', resolve);
    parser.on('error', (err) => reject(badRequest(`bad multipart body: ${(err as Error).message}`)));
  });
  ctx.req.pipe(parser);
  await finished;
  if (!file) throw badRequest('file: the upload has no "file" part');
  const f = await (file as Promise<{ filename: string; bytes: number }>);
  return { fields, ...f };
}
