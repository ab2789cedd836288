// The floor for bench/api-read.ts: a bare node:http server answering every request with the
// bytes (and Content-Type) the coordinator answered GET /v3/pods/{id} with. Started as its own
// process, like the coordinator; prints its port on stdout.
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';

const [bodyFile, contentType] = process.argv.slice(2);
if (!bodyFile || !contentType) {
  console.error('usage: bare-http.js BODY_FILE CONTENT_TYPE');
  process.exit(2);
}
const body = readFileSync(bodyFile);
const server = createServer((_req, res) => {
  res.writeHead(200, { 'Content-Type': contentType, 'Content-Length': body.length });
  res.end(body);
});
server.listen(0, '127.0.0.1', () => console.log((server.address() as AddressInfo).port));
process.on('SIGTERM', () => server.close(() => process.exit(0)));
