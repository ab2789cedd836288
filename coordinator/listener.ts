import { readFileSync } from 'node:fs';
import { createServer as createHttpServer, type RequestListener, type Server } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { CoordinatorConfig } from '../shared/config.js';

/**
 * The server the API and the agents' WebSocket endpoint share: HTTPS when PODS_TLS_CERT_FILE and
 * PODS_TLS_KEY_FILE are set (read once at start; restart to load a renewed certificate), else
 * plain HTTP for a TLS proxy in front or a loopback-only setup.
 */
export function createListener(config: CoordinatorConfig, handler: RequestListener): { server: Server; scheme: 'http' | 'https' } {
  if (!config.tlsCertFile || !config.tlsKeyFile) return { server: createHttpServer(handler), scheme: 'http' };
  const tls = { cert: readFileSync(config.tlsCertFile), key: readFileSync(config.tlsKeyFile) };
  return { server: createHttpsServer(tls, handler), scheme: 'https' };
}
