import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DEFAULT_TEMPLATES_DIR, readTemplateFiles } from '../../coordinator/builtin-templates.js';
import { derive } from '../../coordinator/derive.js';
import { containerSpec } from '../../coordinator/view.js';
import type { PodSpec } from '../../shared/pod.js';
import { parseTemplateRef, render, tagTimestamp } from '../../shared/template.js';

test('template references: id, id:tag, id:tag@timestamp', () => {
  assert.deepEqual(parseTemplateRef('neo4j'), { id: 'neo4j', tag: 'latest', timestamp: null });
  assert.deepEqual(parseTemplateRef('neo4j:5'), { id: 'neo4j', tag: '5', timestamp: null });
  assert.deepEqual(parseTemplateRef('neo4j:5@2026-01-02-03:04:05'), { id: 'neo4j', tag: '5', timestamp: '2026-01-02-03:04:05' });
  for (const bad of ['', 'Neo4j', 'neo4j:', 'neo4j:5@2026-01-02', 'neo4j@x', '../etc']) assert.equal(parseTemplateRef(bad), null, bad);
  assert.equal(tagTimestamp(new Date('2026-01-02T03:04:05.678Z')), '2026-01-02-03:04:05');
});

test('placeholders are filled; unknown ones are left alone', () => {
  const v = { pod_id: 'db1', user_username: 'db1', user_password: 'pw', service_password: 'spw' };
  assert.equal(render('{{user_username}}/{{ user_password }} {{other}}', v), 'db1/pw {{other}}');
});

test("the user's own fields win over the template's; environment and resources merge by key", () => {
  const def = {
    image: 'neo4j:5',
    environment_variables: { A: '1', B: '2' },
    resources: { cpu_request: 1000, mem_limit: 3072 },
    networking: { default: { protocol: 'tcp' as const, port: 7687 } },
    user: '7474:7474',
  };
  const d = derive(def, { environment_variables: { B: 'mine' }, resources: { cpu_request: 500 }, description: 'mine' });
  assert.equal(d.image, 'neo4j:5');
  assert.deepEqual(d.environment_variables, { A: '1', B: 'mine' });
  assert.equal(d.resources.cpu_request, 500);
  assert.equal(d.resources.mem_limit, 3072);
  assert.equal(d.description, 'mine');
  assert.deepEqual(d.networking, { default: { protocol: 'tcp', port: 7687 } });
  assert.equal(d.user, '7474:7474');
  assert.deepEqual(derive(null, {}).networking, { default: { protocol: 'http', port: 5000 } }, 'no template: the Tapis default');
});

test('every file in templates/ is valid, and the required templates are there', async () => {
  const files = await readTemplateFiles(DEFAULT_TEMPLATES_DIR);
  const ids = files.map((f) => f.template_id);
  for (const id of ['neo4j', 'postgres', 'redis', 'mariadb', 'mongodb', 'jupyter']) assert.ok(ids.includes(id), id);
  for (const f of files) for (const t of f.tags) assert.ok(t.pod_definition.image, `${f.template_id}:${t.tag} has an image`);
});

test('the neo4j template renders to a container spec with its credentials, ports, user and init', async () => {
  const neo4j = (await readTemplateFiles(DEFAULT_TEMPLATES_DIR)).find((f) => f.template_id === 'neo4j')!;
  const def = neo4j.tags.find((t) => t.tag === '5')!.pod_definition;
  const derived = derive(def, {});
  const spec: PodSpec = { ...derived, pod_id: 'graph1', tenant: 'dev', owner: 'alice', template: 'neo4j:5', creation_ts: '', update_ts: '' };
  const secrets = { pod_id: 'graph1', user_username: 'graph1', user_password: 'U'.repeat(32), service_password: 'S'.repeat(32) };
  const c = containerSpec(spec, 'example.org', secrets);
  assert.equal(c.image, 'neo4j:5');
  assert.equal(c.env.NEO4J_AUTH, `neo4j/${'S'.repeat(32)}`);
  assert.equal(c.user, '7474:7474');
  assert.deepEqual(c.ports.map((p) => [p.name, p.protocol, p.port, p.host]), [
    ['default', 'tcp', 7687, 'graph1.pods.dev.example.org'],
    ['browser', 'http', 7474, 'graph1-browser.pods.dev.example.org'],
  ]);
  assert.ok(c.init![0]!.some((arg) => arg.includes(`CREATE USER \`graph1\``) && arg.includes(`'${'U'.repeat(32)}'`)), 'init creates the pod user with its password');
  assert.ok(c.readiness!.exec.includes('S'.repeat(32)));
  assert.equal(JSON.stringify(spec).includes('U'.repeat(32)), false, 'the stored spec keeps placeholders, not secrets');
  assert.equal(c.cpuRequestMilli, 1000);
});
