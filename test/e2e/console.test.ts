// The web console in a real browser against the real stack: headless Chromium (Debian's
// `chromium`) driven by playwright-core, a real coordinator, agent, dockerd and Caddy. Each
// step leaves a screenshot in test/artifacts/console/ (ignored by git) to be looked at.
import assert from 'node:assert/strict';
import { existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { request } from 'undici';
import { LOCAL_TEMPLATES_DIR } from '../../coordinator/builtin-templates.js';
import { skipWithoutCaddy } from '../helpers/caddy.js';
import { waitFor } from '../helpers/procs.js';
import { repoRoot, startStack, type Stack } from '../helpers/stack.js';

const CHROMIUM = '/usr/bin/chromium';
const ARTIFACTS = path.join(repoRoot(), 'test/artifacts/console');
const USER = 'carol';
const PASSWORD = 'carol-password-1';
const TOKEN_KEY = 'pods.console.token';

function skip(): string | false {
  return skipWithoutCaddy() || (existsSync(CHROMIUM) ? false : `no Chromium at ${CHROMIUM} (ops/lib.sh ensure_packages installs it)`);
}

describe('web console', { skip: skip() }, () => {
  let s: Stack;
  let browser: Browser;
  const contexts: BrowserContext[] = [];
  /**
   * Errors the page logged (a CSP violation is one, an uncaught exception another): every test
   * ends with none. The browser's own note of each 4xx answer is left out: the page expects some.
   */
  const pageErrors: string[] = [];

  const shot = (page: Page, name: string) => page.screenshot({ path: path.join(ARTIFACTS, `${name}.png`), fullPage: true });

  async function newPage(viewport = { width: 1280, height: 900 }): Promise<Page> {
    pageErrors.length = 0;
    const ctx = await browser.newContext({ viewport });
    contexts.push(ctx);
    const page = await ctx.newPage();
    page.on('console', (m) => {
      if (m.type() === 'error' && !m.text().startsWith('Failed to load resource')) pageErrors.push(m.text());
    });
    page.on('pageerror', (e) => pageErrors.push(e.message));
    return page;
  }

  async function logIn(page: Page, password = PASSWORD): Promise<void> {
    await page.goto(`${s.apiUrl}/`);
    await page.fill('#username', USER);
    await page.fill('#password', password);
    await page.click('#login-form button[type=submit]');
  }

  before(async () => {
    mkdirSync(ARTIFACTS, { recursive: true });
    s = await startStack({
      coordinatorEnv: { PODS_TEMPLATES_LOCAL_DIR: LOCAL_TEMPLATES_DIR },
      agentEnv: { PODS_METRICS_SAMPLE_MS: '1000' }, // usage samples every second: the chart has a line within the test
    });
    await s.addUser(s.tenant, USER, PASSWORD);
    const { chromium } = await import('playwright-core');
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
  });
  after(async () => {
    if (pageErrors.length) console.log('page errors:', pageErrors);
    for (const c of contexts) await c.close().catch(() => undefined);
    await browser?.close();
    await s?.stop();
  });

  test('the page is served with its content types, a strict CSP, and the page itself never cached', async () => {
    const root = await request(`${s.apiUrl}/`);
    assert.equal(root.statusCode, 302);
    assert.equal(root.headers.location, '/ui/');
    await root.body.dump();

    const page = await request(`${s.apiUrl}/ui/`);
    assert.equal(page.statusCode, 200);
    assert.equal(page.headers['content-type'], 'text/html; charset=utf-8');
    assert.equal(page.headers['cache-control'], 'no-store');
    const csp = String(page.headers['content-security-policy']);
    assert.match(csp, /default-src 'none'/);
    assert.match(csp, /script-src 'self'(;|$)/, 'no inline or foreign scripts');
    assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval/);
    const html = await page.body.text();
    assert.doesNotMatch(html, /<script(?![^>]*\bsrc=)[^>]*>/, 'no inline script in the page');
    assert.doesNotMatch(html, /https?:\/\//, 'nothing fetched from another origin');

    for (const [file, type] of [['main.js', 'text/javascript; charset=utf-8'], ['console.css', 'text/css; charset=utf-8']]) {
      const r = await request(`${s.apiUrl}/ui/${file}`);
      assert.equal(r.statusCode, 200, file);
      assert.equal(r.headers['content-type'], type, file);
      assert.equal(r.headers['x-content-type-options'], 'nosniff');
      const etag = String(r.headers.etag);
      await r.body.dump();
      const again = await request(`${s.apiUrl}/ui/${file}`, { headers: { 'if-none-match': etag } });
      assert.equal(again.statusCode, 304, `${file} revalidates`);
      await again.body.dump();
    }
    for (const missing of ['main.js.map', 'nope.js', '..%2Fapi%2Fconsole.js']) {
      const r = await request(`${s.apiUrl}/ui/${missing}`);
      assert.equal(r.statusCode, 404, missing);
      await r.body.dump();
    }
  });

  test('a wrong password shows an error and no session', async () => {
    const page = await newPage();
    await logIn(page, 'not-the-password');
    assert.match(page.url(), /\/ui\/$/);
    await page.waitForSelector('#login-error:has-text("Wrong username or password.")');
    assert.equal(await page.evaluate((k) => sessionStorage.getItem(k), TOKEN_KEY), null);
    assert.equal(await page.isVisible('#app-view'), false);
    await shot(page, '01-wrong-password');
    assert.deepEqual(pageErrors, []);
  });

  test('log in, create a pod from a template, watch it reach RUNNING, follow its log live, delete it', async () => {
    const page = await newPage();
    await logIn(page);
    await page.waitForSelector('#pods-h');
    assert.equal(await page.textContent('#whoami'), USER);
    assert.equal(await page.isVisible('#nav-admin'), false, 'a plain user sees no hosts');
    await page.waitForSelector('#new-template option[value=redis]', { state: 'attached' });
    await shot(page, '02-logged-in');

    await page.fill('#new-pod-id', 'console1');
    await page.selectOption('#new-template', 'redis');
    await page.fill('#new-description', 'made in the console');
    await shot(page, '03-create-form');
    await page.click('#create-h ~ button[type=submit], form[aria-labelledby=create-h] button[type=submit]');
    await page.waitForURL(/#\/pods\/console1$/);

    // Status is polled: REQUESTED/CREATING first, then RUNNING without a reload.
    await page.waitForSelector('#pod-status:has-text("RUNNING")', { timeout: 60_000 });
    await page.waitForSelector('#pod-log:has-text("Ready to accept connections")', { timeout: 30_000 });
    await shot(page, '04-running');

    // A line written after the page started following appears without a reload.
    assert.doesNotMatch((await page.textContent('#pod-log')) ?? '', /Background saving started/);
    const exec = await s.api('POST', '/v3/pods/console1/exec', { body: { commands: ['REDISCLI_AUTH="$REDIS_PASSWORD" redis-cli BGSAVE'] } });
    assert.equal(exec.status, 200, exec.body.message);
    assert.equal(exec.body.result.execution_results[0].success, true, JSON.stringify(exec.body.result));
    await page.waitForSelector('#pod-log:has-text("Background saving started")', { timeout: 15_000 });
    assert.equal(await page.isChecked('#follow-log'), true);

    // Events and credentials.
    await page.waitForSelector('.events td:text-is("started")', { timeout: 10_000 });
    await page.click('#show-creds');
    await page.waitForSelector('#cred-password');
    const creds = (await s.api('GET', '/v3/pods/console1/credentials')).body.result;
    assert.equal(await page.inputValue('#cred-user'), creds.user_username);
    assert.equal(await page.inputValue('#cred-password'), creds.user_password);
    // Usage: a CPU and a memory line with their numbers in words.
    for (const chart of ['cpu', 'mem']) await page.waitForSelector(`#pod-metrics svg.chart.${chart} polyline`, { state: 'attached', timeout: 20_000 });
    assert.match((await page.textContent('#pod-metrics')) ?? '', /Memory: now [\d.]+ MB of 512 MB/);
    await shot(page, '05-log-events-credentials-usage');

    // Back on the list the pod is there with its status.
    await page.click('text=← All pods');
    await page.waitForSelector('li[data-pod-id=console1][data-status=RUNNING]');
    await shot(page, '06-list');

    // Delete, after the browser's confirmation.
    await page.click('li[data-pod-id=console1] a');
    await page.waitForSelector('#pod-status:has-text("RUNNING")');
    page.once('dialog', (d) => void d.accept());
    await page.click('button[data-action=delete]');
    await page.waitForURL(/#\/pods$/);
    await page.waitForSelector('li[data-pod-id=console1]', { state: 'detached' });
    assert.equal((await s.api('GET', '/v3/pods/console1')).status, 404);
    await shot(page, '07-deleted');
    assert.deepEqual(pageErrors, []);
  });

  test('stop and start from the pod page; it fits a phone screen', async () => {
    const page = await newPage({ width: 390, height: 844 });
    await logIn(page);
    await page.waitForSelector('#pods-h');
    await page.click('#src-image');
    await page.fill('#new-pod-id', 'console2');
    await page.fill('#new-image', 'pods-test/httpd');
    await page.click('form[aria-labelledby=create-h] button[type=submit]');
    await page.waitForSelector('#pod-status:has-text("RUNNING")', { timeout: 60_000 });
    await page.waitForSelector('.urls a');
    await shot(page, '08-phone-pod');
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    assert.ok(overflow <= 0, `the page scrolls sideways by ${overflow}px on a phone`);

    await page.click('button[data-action=stop]');
    await page.waitForSelector('#pod-status:has-text("STOPPED")', { timeout: 30_000 });
    await page.click('button[data-action=start]');
    await page.waitForSelector('#pod-status:has-text("RUNNING")', { timeout: 60_000 });

    // Keyboard only: the list's links are reachable with Tab and open with Enter.
    await page.goto(`${s.apiUrl}/ui/#/pods`);
    await page.waitForSelector('li[data-pod-id=console2]');
    await page.focus('li[data-pod-id=console2] a');
    await page.keyboard.press('Enter');
    await page.waitForURL(/#\/pods\/console2$/);
    await shot(page, '09-phone-list-keyboard');
    assert.deepEqual(pageErrors, []);
    await s.api('DELETE', '/v3/pods/console2');
  });

  test('a site admin sees the hosts and cordons one', async () => {
    const page = await newPage();
    await page.goto(`${s.apiUrl}/ui/`);
    // The site admin's static token, as a login would keep it.
    await page.evaluate(([k, t]) => {
      sessionStorage.setItem(k!, t!);
      sessionStorage.setItem('pods.console.user', 'admin');
    }, [TOKEN_KEY, s.adminToken]);
    await page.reload();
    await page.waitForSelector('#nav-admin', { state: 'visible' });
    await page.click('#nav-admin');
    await page.waitForSelector(`#nodes tr[data-node="${s.nodeId}"]`);
    await page.waitForSelector('#images th:text-is("pods-test/httpd")');
    await page.click(`#nodes tr[data-node="${s.nodeId}"] button:text-is("Cordon")`);
    await page.waitForSelector(`#nodes tr[data-node="${s.nodeId}"] td:has-text("cordoned")`);
    await shot(page, '10-admin-hosts');
    await page.click(`#nodes tr[data-node="${s.nodeId}"] button:text-is("Uncordon")`);
    await page.waitForSelector(`#nodes tr[data-node="${s.nodeId}"] button:text-is("Cordon")`);
    const node = (await s.api('GET', `/v3/admin/nodes/${s.nodeId}`)).body.result;
    assert.equal(node.cordoned, false);
    assert.deepEqual(pageErrors, []);
  });

  test('an expired or revoked token sends the user back to the login form', async () => {
    const page = await newPage();
    await logIn(page);
    await page.waitForSelector('#pods-h');
    await page.evaluate((k) => sessionStorage.setItem(k, 'a.b.c'), TOKEN_KEY);
    await waitFor('the login form', async () => page.isVisible('#login-view'), 10_000);
    assert.match((await page.textContent('#login-error')) ?? '', /log in again/i);
    assert.deepEqual(pageErrors, []);
  });
});
