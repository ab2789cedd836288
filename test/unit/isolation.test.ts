import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isolationRules, passesFrom } from '../../agent/isolation.js';

test('a rule before the isolation jump matters only if it could let a packet from the pods\' bridge through', () => {
  assert.equal(passesFrom('-A FORWARD -i docker0 -o docker0 -j ACCEPT', 'docker0'), true, 'the rule measured on one host');
  assert.equal(passesFrom('-A FORWARD -j ACCEPT', 'docker0'), true, 'no interface: every packet');
  assert.equal(passesFrom('-A FORWARD -i docker+ -j ACCEPT', 'docker0'), true, 'a wildcard that names it');
  assert.equal(passesFrom('-A FORWARD ! -i eth0 -j ACCEPT', 'docker0'), true, 'a negation of another interface');
  assert.equal(passesFrom('-A FORWARD -i podsbr0 -o podsbr0 -m comment --comment pods-cluster -j ACCEPT', 'docker0'), false, 'another bridge');
  assert.equal(passesFrom('-A FORWARD ! -i docker0 -j ACCEPT', 'docker0'), false);
  assert.equal(passesFrom('-A FORWARD -j DROP', 'docker0'), false, 'a drop lets nothing through');
});

test("jumps are followed: Docker's isolation chains (first in FORWARD after a dockerd restart) only drop or return", () => {
  const chains = new Map([
    ['DOCKER-ISOLATION-STAGE-1', ['-A DOCKER-ISOLATION-STAGE-1 -i docker0 ! -o docker0 -j DOCKER-ISOLATION-STAGE-2', '-A DOCKER-ISOLATION-STAGE-1 -j RETURN']],
    ['DOCKER-ISOLATION-STAGE-2', ['-A DOCKER-ISOLATION-STAGE-2 -o docker0 -j DROP', '-A DOCKER-ISOLATION-STAGE-2 -j RETURN']],
    ['DOCKER', ['-A DOCKER -d 172.17.0.2/32 ! -i docker0 -o docker0 -p tcp -m tcp --dport 5000 -j ACCEPT']],
    ['LOOSE', ['-A LOOSE -i docker0 -j ACCEPT']],
  ]);
  assert.equal(passesFrom('-A FORWARD -j DOCKER-ISOLATION-STAGE-1', 'docker0', chains), false);
  assert.equal(passesFrom('-A FORWARD -o docker0 -j DOCKER', 'docker0', chains), false, 'published ports accept only what comes from outside the bridge');
  assert.equal(passesFrom('-A FORWARD -j LOOSE', 'docker0', chains), true, 'a chain that accepts from the bridge');
  assert.equal(passesFrom('-A FORWARD -j LOG', 'docker0', chains), false);
});

test('the isolation rules: pod to pod, each blocked address, and the host answered only on its own connections', () => {
  const r = isolationRules('docker0', ['169.254.169.254/32']);
  assert.deepEqual(r.forward, [
    ['-i', 'docker0', '-o', 'docker0', '-j', 'DROP'],
    ['-i', 'docker0', '-d', '169.254.169.254/32', '-j', 'DROP'],
  ]);
  assert.deepEqual(r.host.at(-1), ['-i', 'docker0', '-j', 'DROP']);
});
