// Usage and Prometheus metrics against the real stack: a pod that burns CPU shows it in its
// /metrics (sampled by the agent from Docker's stats), only to those who may read the pod;
// the coordinator's and the agent's /metrics are for their readers only and pass promtool.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { after, before, describe, test } from 'node:test';
import { request } from 'undici';
import { skipWithoutCaddy } from '../helpers/caddy.js';
import { freePort } from '../helpers/ports.js';
import { waitFor } from '../helpers/procs.js';
import { startStack, TEST_IMAGE, type Stack } from '../helpers/stack.js';

const METRICS_TOKEN = 'metrics-token-for-the-e2e-test';

function promtool(): string | null {
  const r = spawnSync('promtool', ['--version'], { encoding: 'utf8' });
  return r.status === 0 ? 'promtool' : null;
}

/** `promtool check metrics` on an exposition; its complaints, or '' when it passes. */
function checkMetrics(text: string): string {
  const r = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' });
  return r.status === 0 ? '' : `${r.stdout}${r.stderr}`;
}

async function scrape(url: string, headers: Record<string, string> = {}): Promise<{ status: number; type: string; text: string }> {
  const res = await request(url, { headers });
  return { status: res.statusCode, type: String(res.headers['content-type']), text: await res.body.text() };
}

/** The value of one series, by its name and exact labels as printed. */
function series(text: string, name: string, labels: Record<string, string>): number | null {
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`)) continue;
    const close = line.lastIndexOf('}');
    const printed = line.slice(name.length + 1, close);
    if (Object.entries(labels).every(([k, v]) => printed.includes(`${k}="${v}"`))) return Number(line.slice(close + 1).trim());
  }
  return null;
}

describe('metrics', { skip: skipWithoutCaddy() || (promtool() ? false : 'promtool is not installed (Debian: apt-get install prometheus)') }, () => {
  let s: Stack;
  let agentMetricsUrl: string;
  before(async () => {
    const port = await freePort();
    agentMetricsUrl = `http://127.0.0.1:${port}/metrics`;
    s = await startStack({
      coordinatorEnv: { PODS_METRICS_TOKEN: METRICS_TOKEN },
      agentEnv: { PODS_METRICS_LISTEN: `127.0.0.1:${port}`, PODS_METRICS_SAMPLE_MS: '1000' },
    });
    for (const pod_id of ['burner', 'idler']) {
      const body = pod_id === 'burner'
        ? { pod_id, image: TEST_IMAGE, command: ['sh', '-c', 'while :; do :; done'], resources: { cpu_request: 250, cpu_limit: 500 } }
        : { pod_id, image: TEST_IMAGE };
      const r = await s.api('POST', '/v3/pods', { body, token: s.userToken });
      assert.equal(r.status, 200, r.body.message);
    }
    await s.waitStatus('idler', 'RUNNING');
    // burner serves no port: it is RUNNING once its container runs.
    await s.waitStatus('burner', 'RUNNING');
    const stop = await s.api('GET', '/v3/pods/idler/stop', { token: s.userToken });
    assert.equal(stop.status, 200, stop.body.message);
    await s.waitStatus('idler', 'STOPPED');
  });
  after(async () => {
    await s?.api('DELETE', '/v3/pods/burner').catch(() => undefined);
    await s?.api('DELETE', '/v3/pods/idler').catch(() => undefined);
    await s?.stop();
  });

  test("a pod that burns CPU shows CPU and memory in its /metrics, with the last hour's samples", async () => {
    const usage = await waitFor('CPU usage of burner', async () => {
      const r = await s.api('GET', '/v3/pods/burner/metrics', { token: s.userToken });
      assert.equal(r.status, 200, r.body.message);
      return (r.body.result.now?.cpu_cores ?? 0) > 0.05 ? r.body : null;
    }, 30_000, 500);
    assert.equal(usage.status, 'success');
    const m = usage.result;
    assert.equal(m.pod_id, 'burner');
    assert.equal(m.node, s.nodeId);
    assert.ok(m.now.cpu_cores <= 0.6, `cpu_limit 500 caps it near half a core, got ${m.now.cpu_cores}`);
    assert.ok(m.now.memory_bytes > 0, 'memory in use');
    assert.ok(m.now.memory_limit_bytes > 0, 'the container has a memory limit');
    assert.equal(typeof m.now.network_rx_bytes, 'number');
    assert.ok(m.samples.length >= 2, 'samples of the last hour');
    assert.equal(m.interval_s, 1);
    assert.ok(m.last_hour.cpu_cores_max > 0);
    assert.ok(m.last_hour.memory_bytes_max > 0);
    assert.equal(m.last_hour.restarts, 0);
  });

  test("another tenant's user gets a 404 or 401, nobody without a token gets in", async () => {
    const other = await s.api('GET', '/v3/pods/burner/metrics', { token: s.otherTenantToken });
    assert.ok([401, 404].includes(other.status), `another tenant: ${other.status} ${other.body.message}`);
    const none = await s.api('GET', '/v3/pods/burner/metrics', { token: null });
    assert.equal(none.status, 401);
    const missing = await s.api('GET', '/v3/pods/nosuchpod/metrics');
    assert.equal(missing.status, 404);
  });

  test("the coordinator's /metrics: site admin or metrics token only; pods by status and tenant; promtool passes", async () => {
    const url = `${s.apiUrl}/metrics`;
    assert.equal((await scrape(url)).status, 401, 'no token');
    assert.equal((await scrape(url, { 'x-tapis-token': s.userToken })).status, 403, 'a user who is not a site admin');
    assert.equal((await scrape(url, { authorization: 'Bearer not-the-metrics-token' })).status, 401, 'a wrong bearer token');
    const byAdmin = await scrape(url, { 'x-tapis-token': s.adminToken });
    assert.equal(byAdmin.status, 200, byAdmin.text);
    const r = await scrape(url, { authorization: `Bearer ${METRICS_TOKEN}` });
    assert.equal(r.status, 200, r.text);
    assert.match(r.type, /^text\/plain; version=0\.0\.4/);
    assert.equal(checkMetrics(r.text), '', 'promtool check metrics');
    assert.equal(series(r.text, 'pods_pods', { tenant: s.tenant, status: 'RUNNING' }), 1, r.text);
    assert.equal(series(r.text, 'pods_pods', { tenant: s.tenant, status: 'STOPPED' }), 1, r.text);
    assert.equal(series(r.text, 'pods_agent_links', {}) ?? Number(/^pods_agent_links (\S+)$/m.exec(r.text)?.[1]), 1);
    assert.ok((series(r.text, 'pods_placements_total', { result: 'placed' }) ?? 0) >= 2, 'two placements');
    assert.match(r.text, /^pods_reconcile_duration_seconds_count\{result="ok"\} [1-9]/m);
    assert.match(r.text, /^# TYPE pods_dispatch_retries_total counter$/m);
    assert.doesNotMatch(r.text, /pod="/, 'no pod ids in the coordinator\'s labels');
  });

  test("the agent's /metrics: per-pod CPU and memory, Caddy writes; promtool passes", async () => {
    const r = await waitFor('the agent\'s burner series', async () => {
      const x = await scrape(agentMetricsUrl);
      return (series(x.text, 'pods_agent_pod_cpu_cores', { tenant: s.tenant, pod: 'burner' }) ?? 0) > 0 ? x : null;
    }, 20_000, 500);
    assert.equal(r.status, 200);
    assert.equal(checkMetrics(r.text), '', 'promtool check metrics');
    assert.ok((series(r.text, 'pods_agent_pod_memory_bytes', { tenant: s.tenant, pod: 'burner' }) ?? 0) > 0);
    assert.equal(series(r.text, 'pods_agent_pod_cpu_cores', { pod: 'idler' }), null, 'a stopped pod has no series');
    assert.equal(Number(/^pods_agent_pods_running\{[^}]*\} (\S+)$/m.exec(r.text)?.[1]), 1);
    assert.ok((series(r.text, 'pods_agent_caddy_writes_total', { result: 'ok' }) ?? 0) > 0, 'Caddy writes counted');
    assert.equal((await scrape(agentMetricsUrl.replace('/metrics', '/other'))).status, 404);
  });

  test('a host that is not connected: 503 with a clear message', async () => {
    await s.agent.kill('SIGKILL');
    await waitFor('the link to drop', async () => {
      const r = await s.api('GET', '/v3/pods/burner/metrics', { token: s.userToken });
      return r.status === 503 ? r : null;
    }, 15_000, 200).then((r) => {
      assert.equal(r.body.status, 'error');
      assert.match(r.body.message, /not connected/);
    });
  });
});
