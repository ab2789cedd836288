// Every shipped template, created with no tag as a user would (`"template": "neo4j"`), end to
// end with real dockerd, Redis, Caddy, coordinator, agent and each template's own client: it
// reaches RUNNING, the client logs in with the pod's generated credentials (a wrong password is
// refused), writes, and after a restart (a new container on the same data directory) reads back
// what it wrote. The coordinator serves the templates as `npm run up` does where no registry
// answers: templates/local/ makes the images built by ops/images/build-template-images.sh latest.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { DEFAULT_TEMPLATES_DIR, LOCAL_TEMPLATES_DIR, readTemplateFiles } from '../../coordinator/builtin-templates.js';
import { skipWithoutCaddy } from '../helpers/caddy.js';
import { freePort } from '../helpers/ports.js';
import { waitFor } from '../helpers/procs.js';
import { startStack, type Stack } from '../helpers/stack.js';
import { boltHandshake, TEMPLATE_CLIENTS, type PodAccess } from '../helpers/template-clients.js';

/** How long a pod from a template may take to be RUNNING (Neo4j's JVM on two busy cores). */
const START_MS = 180_000;

describe('every shipped template, with no tag, run and reached with its own client', { skip: skipWithoutCaddy() }, () => {
  let s: Stack;
  let tlsPort: number;
  let dataRoot: string;

  before(async () => {
    tlsPort = await freePort();
    dataRoot = await mkdtemp(path.join(tmpdir(), 'pods-templates-'));
    // Below the ephemeral range (32768+), so no outgoing connection or freePort() can hold one.
    const first = 20_000 + Math.floor(Math.random() * 12_000);
    s = await startStack({
      agentEnv: { PODS_CADDY_TLS_LISTEN: `127.0.0.1:${tlsPort}`, PODS_DATA_ROOT: dataRoot },
      coordinatorEnv: {
        PODS_PUBLIC_TLS_PORT: String(tlsPort),
        PODS_TCP_PORT_RANGE: `${first}-${first + 20}`,
        PODS_TEMPLATES_LOCAL_DIR: LOCAL_TEMPLATES_DIR,
      },
    });
  });
  after(async () => {
    await s?.stop();
    if (dataRoot) await rm(dataRoot, { recursive: true, force: true });
  });

  test('each shipped template has a client here, so none ships that no test has run', async () => {
    const ids = (await readTemplateFiles(DEFAULT_TEMPLATES_DIR)).map((f) => f.template_id).sort();
    assert.deepEqual(ids, Object.keys(TEMPLATE_CLIENTS).sort());
  });

  /** The pod as its user reaches it, once RUNNING. */
  async function access(podId: string): Promise<PodAccess> {
    const pod = await s.waitStatus(podId, 'RUNNING', START_MS);
    const creds = (await s.api('GET', `/v3/pods/${podId}/credentials`, { token: s.userToken })).body.result;
    return {
      podId,
      host: `${podId}.pods.${s.tenant}.${s.baseDomain}`,
      networking: pod.networking,
      username: creds.user_username,
      password: creds.user_password,
      tlsPort,
      httpUrl: s.caddy.httpUrl,
    };
  }

  for (const [id, client] of Object.entries(TEMPLATE_CLIENTS)) {
    test(`${id}: "template": "${id}" runs its local image; ${client.via} writes, and reads it back after a restart`, { timeout: 3 * START_MS }, async () => {
      const podId = `tpl${id}`;
      const created = await s.api('POST', '/v3/pods', { token: s.userToken, body: { pod_id: podId, template: id } });
      assert.equal(created.status, 200, created.body.message);
      const derived = await s.api('GET', `/v3/pods/${podId}/derived`, { token: s.userToken });
      assert.match(derived.body.result.image, /^pods-test\//, `${id}:latest is the local tag: ${JSON.stringify(derived.body.result)}`);

      const p = await access(podId);
      await waitFor(`${id} to answer its client`, async () => (await client.ping(p)) || null, 30_000, 250);
      assert.ok(await client.refusesWrongPassword(p), 'a wrong password is refused');
      if (id === 'neo4j') assert.equal(await boltHandshake(p), 5, 'Bolt 5 through Caddy\'s TLS listener by the pod\'s host name');
      const value = `kept-${Date.now()}`;
      await client.write(p, value);
      assert.equal(await client.read(p), value);

      const before = await s.containers(podId);
      assert.equal((await s.api('GET', `/v3/pods/${podId}/restart`, { token: s.userToken })).status, 200);
      await waitFor('a new container', async () => (await s.containers(podId)).some((c) => !before.includes(c)), 60_000);
      const again = await access(podId);
      await waitFor(`${id} to answer after the restart`, async () => (await client.ping(again)) || null, 30_000, 250);
      assert.equal(await client.read(again), value, 'what was written is there after the restart');

      if (id === 'neo4j') {
        // The image says so once the server answers, and its output reaches the coordinator a moment later.
        const kept = new RegExp(`pods: user ${p.username} is there from an earlier start`);
        const logs = async () => (await s.api('GET', `/v3/pods/${podId}/logs`, { token: s.userToken })).body.result.logs as string;
        const text = await waitFor('the restarted neo4j to say it kept the pod\'s user', async () => {
          const t = await logs();
          return kept.test(t) ? t : null;
        }, 30_000, 250).catch(async () => logs());
        assert.match(text, /Started\./, 'the server says it started');
        assert.match(text, kept, 'the restart keeps the pod\'s user');
      }
      assert.equal((await s.api('DELETE', `/v3/pods/${podId}`, { token: s.userToken })).status, 200);
    });
  }
});
