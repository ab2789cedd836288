// npm run bench (after create-to-url): for each shipped template, with no tag as a user asks
// for it (its local image, as `npm run up` serves it where no registry answers), the time from
// the create call to RUNNING and to the first query its own client gets answered with the pod's
// credentials (test/helpers/template-clients.ts: psql, redis-cli, mariadb, Neo4j's HTTP API,
// Jupyter's REST API). BENCH_TEMPLATE_PODS (5) pods per template, one after another, each deleted
// before the next; every sample is kept in bench/results/templates.json beside p50 and p95.
// BENCH_TEMPLATES=neo4j,redis measures only those.
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { LOCAL_TEMPLATES_DIR } from '../coordinator/builtin-templates.js';
import { freePort } from '../test/helpers/ports.js';
import { waitFor } from '../test/helpers/procs.js';
import { repoRoot, startStack, type Stack } from '../test/helpers/stack.js';
import { TEMPLATE_CLIENTS, type PodAccess } from '../test/helpers/template-clients.js';

const PODS = Number(process.env.BENCH_TEMPLATE_PODS ?? 5);
const START_MS = 180_000;

function pct(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return Math.round(s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)]!);
}

interface Sample {
  running_ms: number;
  first_query_ms: number;
}

/** One pod from the template: create -> RUNNING, and create -> the first answered query. */
async function sample(s: Stack, tlsPort: number, template: string, podId: string): Promise<Sample> {
  const client = TEMPLATE_CLIENTS[template]!;
  const t0 = performance.now();
  const r = await s.api('POST', '/v3/pods', { body: { pod_id: podId, template } });
  if (r.status !== 200) throw new Error(`create ${podId}: ${r.body.message}`);
  const { user_username: username, user_password: password } = (await s.api('GET', `/v3/pods/${podId}/credentials`)).body.result;
  let running_ms = 0;
  await waitFor(`${podId} to answer a query`, async () => {
    const pod = (await s.api('GET', `/v3/pods/${podId}`)).body.result;
    if (pod.status !== 'RUNNING') return null;
    running_ms ||= performance.now() - t0;
    const access: PodAccess = { podId, host: `${podId}.pods.${s.tenant}.${s.baseDomain}`, networking: pod.networking, username, password, tlsPort, httpUrl: s.caddy.httpUrl };
    return (await client.ping(access)) || null;
  }, START_MS, 50).catch(async (err: Error) => {
    const pod = (await s.api('GET', `/v3/pods/${podId}`)).body.result;
    const logs = (await s.api('GET', `/v3/pods/${podId}/logs`)).body.result?.logs ?? '';
    throw new Error(`${err.message}; the pod is ${pod?.status} (${JSON.stringify(pod?.status_container ?? {})}); its logs end with:\n${String(logs).slice(-2000)}`);
  });
  const first_query_ms = performance.now() - t0;
  await s.api('DELETE', `/v3/pods/${podId}`);
  await waitFor(`${podId} to be deleted`, async () => (await s.api('GET', `/v3/pods/${podId}`)).status === 404, 60_000, 50);
  return { running_ms: Math.round(running_ms), first_query_ms: Math.round(first_query_ms) };
}

async function main(): Promise<void> {
  const tlsPort = await freePort();
  const dataRoot = await mkdtemp(path.join(tmpdir(), 'pods-bench-templates-'));
  const first = 20_000 + Math.floor(Math.random() * 12_000);
  const s = await startStack({
    agentEnv: { PODS_CADDY_TLS_LISTEN: `127.0.0.1:${tlsPort}`, PODS_DATA_ROOT: dataRoot },
    coordinatorEnv: { PODS_PUBLIC_TLS_PORT: String(tlsPort), PODS_TCP_PORT_RANGE: `${first}-${first + 20}`, PODS_TEMPLATES_LOCAL_DIR: LOCAL_TEMPLATES_DIR },
  });
  const templates: Record<string, object> = {};
  try {
    const only = process.env.BENCH_TEMPLATES?.split(',');
    for (const template of Object.keys(TEMPLATE_CLIENTS).filter((t) => !only || only.includes(t))) {
      const image = (await s.api('GET', `/v3/pods/templates/${template}/tags/latest`)).body.result.at(-1).pod_definition.image;
      const samples: Sample[] = [];
      for (let i = 0; i < PODS; i++) samples.push(await sample(s, tlsPort, template, `bench${template}${i}`));
      const running = samples.map((x) => x.running_ms);
      const query = samples.map((x) => x.first_query_ms);
      templates[template] = {
        image,
        client: TEMPLATE_CLIENTS[template]!.via,
        create_to_running_p50_ms: pct(running, 50),
        create_to_running_p95_ms: pct(running, 95),
        create_to_first_query_p50_ms: pct(query, 50),
        create_to_first_query_p95_ms: pct(query, 95),
        samples,
      };
    }
  } finally {
    await s.stop();
    await rm(dataRoot, { recursive: true, force: true });
  }
  const result = { measured_at: new Date().toISOString(), pods_per_template: PODS, templates };
  const dir = path.join(repoRoot(), 'bench', 'results');
  await mkdir(dir, { recursive: true });
  await writeFile(path.join(dir, 'templates.json'), JSON.stringify(result, null, 2) + '\n');
  console.log('| template (image) | create -> RUNNING p50 / p95 ms | create -> first query p50 / p95 ms | every sample (first query, ms) |\n|---|---|---|---|');
  for (const [id, t] of Object.entries(templates) as Array<[string, any]>) {
    console.log(`| ${id} (${t.image}) | ${t.create_to_running_p50_ms} / ${t.create_to_running_p95_ms} | ${t.create_to_first_query_p50_ms} / ${t.create_to_first_query_p95_ms} | ${t.samples.map((x: Sample) => x.first_query_ms).join(', ')} |`);
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
