import type { Context } from 'koa';
import type { z } from 'zod';
import { badRequest, PodsError } from '../../shared/errors.js';
import { formatIssues } from '../../shared/protocol.js';

const FORM = /^application\/x-www-form-urlencoded\b/i;

/** Read a JSON body of at most `limit` bytes; bad input becomes a 400/413/415 PodsError. */
export async function readJson(ctx: Context, limit: number): Promise<unknown> {
  const type = ctx.get('content-type');
  if (type && !/^application\/json\b/i.test(type)) {
    throw new PodsError('UNSUPPORTED_MEDIA_TYPE', 'request body must be JSON (Content-Type: application/json)');
  }
  return parseJsonBody(await readText(ctx, limit));
}

/** A JSON or form-encoded body, as an object of fields. */
export async function readJsonOrForm(ctx: Context, limit: number): Promise<unknown> {
  if (!FORM.test(ctx.get('content-type'))) return readJson(ctx, limit);
  return Object.fromEntries(new URLSearchParams(await readText(ctx, limit)));
}

async function readText(ctx: Context, limit: number): Promise<string> {
  const declared = Number(ctx.get('content-length') || 0);
  if (declared > limit) throw new PodsError('PAYLOAD_TOO_LARGE', `request body is larger than ${limit} bytes`);
  // Read with events, not `for await`: an async iterator a request costs more than the small bodies it reads.
  const req = ctx.req;
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const done = (err: Error | null) => {
      req.off('data', onData).off('end', onEnd).off('error', done).off('aborted', onAborted);
      if (err) reject(err);
      else resolve(Buffer.concat(chunks).toString('utf8'));
    };
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size <= limit) chunks.push(chunk);
      else done(new PodsError('PAYLOAD_TOO_LARGE', `request body is larger than ${limit} bytes`));
    };
    const onEnd = () => done(null);
    const onAborted = () => done(new Error('the client went away before sending its whole body'));
    req.on('data', onData).on('end', onEnd).on('error', done).on('aborted', onAborted);
  });
}

function parseJsonBody(text: string): unknown {
  if (!text.trim()) throw badRequest('request body is empty; a JSON object is required');
  try {
    return JSON.parse(text);
  } catch {
    throw badRequest('request body is not valid JSON');
  }
}

export function validate<T>(schema: z.ZodType<T>, value: unknown): T {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw badRequest('request body must be a JSON object');
  const parsed = schema.safeParse(value);
  if (!parsed.success) throw badRequest(formatIssues(parsed.error));
  return parsed.data;
}
