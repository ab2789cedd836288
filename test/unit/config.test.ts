import assert from 'node:assert/strict';
import { test } from 'node:test';
import { loadAgentConfig, loadCoordinatorConfig } from '../../shared/config.js';

test('coordinator config: defaults, and what is wrong said in words', () => {
  const c = loadCoordinatorConfig({ PODS_ADMIN_TOKEN: 'a'.repeat(20), PODS_NODE_TOKENS: `host1=${'n'.repeat(20)}, host2=${'m'.repeat(20)}` });
  assert.equal(c.listenPort, 8000);
  assert.deepEqual(c.nodeTokens, [{ nodeId: 'host1', token: 'n'.repeat(20) }, { nodeId: 'host2', token: 'm'.repeat(20) }]);
  // Every node token is bound to one node id, and each node has its own.
  assert.throws(() => loadCoordinatorConfig({ PODS_ADMIN_TOKEN: 'a'.repeat(20), PODS_NODE_TOKENS: 'n'.repeat(20) }), /entries are NODE_ID=TOKEN/);
  assert.throws(() => loadCoordinatorConfig({ PODS_ADMIN_TOKEN: 'a'.repeat(20), PODS_NODE_TOKENS: `a=${'n'.repeat(20)},b=${'n'.repeat(20)}` }), /its own token/);
  assert.throws(() => loadCoordinatorConfig({ PODS_ADMIN_TOKEN: 'a'.repeat(20), PODS_NODE_TOKENS: `Bad_Node=${'n'.repeat(20)}` }), /node ids are/);
  assert.throws(() => loadCoordinatorConfig({ PODS_NODE_TOKENS: `host1=${'n'.repeat(20)}` }), /adminToken/);
  assert.throws(() => loadCoordinatorConfig({ PODS_ADMIN_TOKEN: 'short', PODS_NODE_TOKENS: `host1=${'n'.repeat(20)}` }), /PODS_ADMIN_TOKEN must be at least 16/);
  assert.throws(() => loadCoordinatorConfig({ PODS_ADMIN_TOKEN: 'a'.repeat(20), PODS_TLS_CERT_FILE: '/etc/pods/tls/c.crt' }), /PODS_TLS_CERT_FILE and PODS_TLS_KEY_FILE go together/);
  assert.throws(() => loadCoordinatorConfig({ PODS_ADMIN_TOKEN: 'a'.repeat(20), PODS_NODE_TOKENS: `host1=${'n'.repeat(20)}`, PODS_EXTRA_TOKENS: '{oops' }), /PODS_EXTRA_TOKENS is not valid JSON/);
  assert.throws(
    () => loadCoordinatorConfig({ PODS_ADMIN_TOKEN: 'a'.repeat(20), PODS_NODE_TOKENS: `host1=${'n'.repeat(20)}`, PODS_EXTRA_TOKENS: JSON.stringify([{ token: 'a'.repeat(20), tenant: 'x', username: 'u' }]) }),
    /must not reuse PODS_ADMIN_TOKEN/,
  );
});

test('agent config: the coordinator URL must be a WebSocket URL', () => {
  const base = { PODS_NODE_TOKEN: 'n'.repeat(20), PODS_NODE_ID: 'host1' };
  assert.equal(loadAgentConfig({ ...base, PODS_COORDINATOR_URL: 'wss://pods.example/v3/agents/connect' }).nodeId, 'host1');
  assert.throws(() => loadAgentConfig({ ...base, PODS_COORDINATOR_URL: 'http://x' }), /PODS_COORDINATOR_URL must start with ws:\/\//);
  const url = { ...base, PODS_COORDINATOR_URL: 'ws://127.0.0.1:8000/v3/agents/connect' };
  assert.throws(() => loadAgentConfig({ ...url, PODS_TCP_LISTEN_HOST: '0.0.0.0' }), /must be a specific address, not 0\.0\.0\.0/);
  assert.throws(() => loadAgentConfig({ ...url, PODS_CADDY_TLS_LISTEN: ':8443' }), /PODS_CADDY_TLS_LISTEN must be IP:PORT/);
  assert.throws(
    () => loadCoordinatorConfig({ PODS_ADMIN_TOKEN: 'a'.repeat(20), PODS_NODE_TOKENS: `host1=${'n'.repeat(20)}`, PODS_TCP_PORT_RANGE: '30000-20000' }),
    /PODS_TCP_PORT_RANGE must lie within 1024-65535, first <= last/,
  );
  assert.deepEqual(loadCoordinatorConfig({ PODS_ADMIN_TOKEN: 'a'.repeat(20), PODS_NODE_TOKENS: `host1=${'n'.repeat(20)}`, PODS_TCP_PORT_RANGE: '21000-21010' }).tcpPortRange, [21000, 21010]);
});
