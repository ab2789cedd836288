import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { DEFAULT_TEMPLATES_DIR, LOCAL_TEMPLATES_DIR, readTemplateFiles, withLatest, withLocalTags } from '../../coordinator/builtin-templates.js';
import { derive } from '../../coordinator/derive.js';
import { containerSpec } from '../../coordinator/view.js';
import type { PodSpec } from '../../shared/pod.js';
import { formatIssues } from '../../shared/protocol.js';
import { parseTemplateRef, render, tagTimestamp, TemplateFile } from '../../shared/template.js';
import { repoRoot } from '../helpers/root.js';

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
  assert.deepEqual([...ids].sort(), ['jupyter', 'mariadb', 'neo4j', 'postgres', 'redis'], 'the shipped templates (mongodb is in templates/optional/: nothing here can run it)');
  for (const f of files) for (const t of f.tags) assert.ok(t.pod_definition.image, `${f.template_id}:${t.tag} has an image`);
  const local = await withLocalTags(files, LOCAL_TEMPLATES_DIR);
  for (const id of ids) {
    const tags = local.find((f) => f.template_id === id)!.tags;
    assert.equal(tags.at(-1)!.tag, 'local', `templates/local/ adds ${id}:local as its newest tag`);
    assert.match(tags.at(-1)!.pod_definition.image!, /^pods-test\//, 'a local image is named as one, never as the public image');
  }
});

test('latest is the newest (last) tag of a file; a file may not name a tag latest itself', () => {
  const tags = [
    { tag: '6', commit_message: 'old', pod_definition: { image: 'redis:6' } },
    { tag: '7', commit_message: 'Redis 7', pod_definition: { image: 'redis:7' } },
  ];
  const all = withLatest(tags);
  assert.deepEqual(all.map((t) => t.tag), ['6', '7', 'latest']);
  assert.deepEqual(all.at(-1), { tag: 'latest', commit_message: 'latest is tag 7: Redis 7', pod_definition: { image: 'redis:7' } });

  const own = TemplateFile.safeParse({ template_id: 'x', tags: [{ pod_definition: { image: 'x:1' } }] });
  assert.equal(own.success, false, 'a tag without a name would be latest');
  assert.match(formatIssues(own.error!), /tags\.0\.tag: "latest" is made from the newest \(last\) tag/);
  const twice = TemplateFile.safeParse({ template_id: 'x', tags: [{ tag: '1', pod_definition: {} }, { tag: '1', pod_definition: {} }] });
  assert.match(formatIssues(twice.error!), /tags\.1\.tag: "1" is listed twice/);
});

test("a site's local tags come after the built-in ones; they may not take a built-in tag's name or template", async () => {
  const files = await readTemplateFiles(DEFAULT_TEMPLATES_DIR);
  const dir = await mkdtemp(path.join(tmpdir(), 'pods-local-templates-'));
  const local = (tag: string) => ({ template_id: 'redis', tags: [{ tag, commit_message: 'here', pod_definition: { image: 'site/redis:1' } }] });
  try {
    await writeFile(path.join(dir, 'redis.json'), JSON.stringify(local('site')));
    const merged = await withLocalTags(files, dir);
    assert.deepEqual(merged.find((f) => f.template_id === 'redis')!.tags.map((t) => t.tag), ['7', 'site']);
    assert.deepEqual(files.find((f) => f.template_id === 'redis')!.tags.map((t) => t.tag), ['7'], 'the built-in files are left as they were');

    await writeFile(path.join(dir, 'redis.json'), JSON.stringify(local('7')));
    await assert.rejects(withLocalTags(files, dir), /redis\.json: template "redis" already has a tag "7"; give the local tag a name of its own/);
    await writeFile(path.join(dir, 'redis.json'), JSON.stringify({ ...local('site'), template_id: 'nosuch' }));
    await assert.rejects(withLocalTags(files, dir), /redis\.json: template_id must match the file name/);
    await rm(path.join(dir, 'redis.json'));
    await writeFile(path.join(dir, 'nosuch.json'), JSON.stringify({ ...local('site'), template_id: 'nosuch' }));
    await assert.rejects(withLocalTags(files, dir), /nosuch\.json: there is no built-in template "nosuch"/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test("the README's template table lists every template's tags, images and latest", async () => {
  const readme = await readFile(path.join(repoRoot(), 'README.md'), 'utf8');
  const files = await withLocalTags(await readTemplateFiles(DEFAULT_TEMPLATES_DIR), LOCAL_TEMPLATES_DIR);
  const builtin = await readTemplateFiles(DEFAULT_TEMPLATES_DIR);
  for (const f of files) {
    const row = readme.split('\n').find((l) => l.startsWith(`| \`${f.template_id}\` |`));
    assert.ok(row, `README has a row for ${f.template_id}`);
    for (const t of f.tags) assert.ok(row.includes(`\`${t.tag}\` (\`${t.pod_definition.image}\`)`), `${f.template_id}'s row names its tag ${t.tag} and its image\n${row}`);
    const newest = builtin.find((b) => b.template_id === f.template_id)!.tags.at(-1)!.tag;
    assert.ok(row.trimEnd().split('|').at(-2)!.includes(`\`${newest}\``), `${f.template_id}'s row says latest is ${newest}\n${row}`);
  }
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
