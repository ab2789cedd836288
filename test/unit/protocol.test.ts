import assert from 'node:assert/strict';
import { test } from 'node:test';
import { decodeFrame, encodeFrame, MAX_FRAME_BYTES } from '../../shared/protocol.js';

test('a well-formed frame decodes with its payload parsed', () => {
  const text = encodeFrame('heartbeat', { running: 3 });
  const r = decodeFrame(text);
  assert.ok(r.ok);
  assert.equal(r.frame.type, 'heartbeat');
  assert.deepEqual(r.frame.payload, { running: 3 });
});

test('malformed JSON, a bad envelope, an unknown type, a bad payload and an oversized frame are values, not throws', () => {
  assert.deepEqual(decodeFrame('{nope'), { ok: false, code: 'PROTO_MALFORMED', message: 'frame is not valid JSON' });
  const env = decodeFrame(JSON.stringify({ v: 99, type: 'heartbeat', id: 'a1', payload: {} }));
  assert.equal(env.ok, false);
  assert.equal(!env.ok && env.code, 'PROTO_MALFORMED');
  assert.equal(!env.ok && env.id, 'a1', 'the id is kept so the error can answer the frame');
  const unknown = decodeFrame(JSON.stringify({ v: 1, type: 'launch_missiles', id: 'a2', payload: {} }));
  assert.equal(!unknown.ok && unknown.code, 'PROTO_UNKNOWN_TYPE');
  assert.match(!unknown.ok ? unknown.message : '', /launch_missiles/);
  const proto = decodeFrame(JSON.stringify({ v: 1, type: '__proto__', id: 'a3', payload: {} }));
  assert.equal(!proto.ok && proto.code, 'PROTO_UNKNOWN_TYPE');
  const bad = decodeFrame(JSON.stringify({ v: 1, type: 'heartbeat', id: 'a4', payload: { running: -1 } }));
  assert.equal(!bad.ok && bad.code, 'PROTO_BAD_PAYLOAD');
  assert.match(!bad.ok ? bad.message : '', /running/);
  const big = decodeFrame('x'.repeat(MAX_FRAME_BYTES + 1));
  assert.equal(!big.ok && big.code, 'PROTO_TOO_LARGE');
  assert.equal(decodeFrame(Buffer.from([0xff, 0xfe, 0x00])).ok, false);
  assert.equal(decodeFrame('null').ok, false);
});
