import { pino, type Logger } from 'pino';

export type { Logger };

// Paths that may carry secrets; pino replaces their values before writing.
const REDACT = [
  'token',
  '*.token',
  'password',
  '*.password',
  'headers["x-tapis-token"]',
  'headers.authorization',
  'env',
  '*.env',
  'environment_variables',
  '*.environment_variables',
  'spec.environment_variables',
  '*.spec.env',
];

/** One root logger per process; components take a child carrying podId / nodeId. */
export function createLogger(name: string, level = process.env.PODS_LOG_LEVEL ?? 'info'): Logger {
  return pino({ name, level, redact: { paths: REDACT, censor: '[redacted]' } });
}
