import { ApiError, clearSession, loadSession, login, saveSession, setUnauthorizedHandler } from './api.js';
import { adminView, isSiteAdmin } from './admin-view.js';
import { byId, fill } from './dom.js';
import { podView } from './pod-view.js';
import { podsView } from './pods-view.js';
import type { View } from './view.js';

// The console's shell: the login form, the hash routes (#/pods, #/pods/ID, #/admin) and the
// one poll (every 2 s, paused while the tab is hidden) that keeps the current view live.

const POLL_MS = 2000;

let current: View | null = null;
let siteAdmin = false;
let timer = 0;

function showLogin(message = ''): void {
  current?.dispose();
  current = null;
  window.clearTimeout(timer);
  byId('app-view').hidden = true;
  byId('nav').hidden = true;
  byId('logout').hidden = true;
  byId('whoami').textContent = '';
  byId('login-view').hidden = false;
  byId('login-error').textContent = message;
  byId<HTMLInputElement>('username').focus();
}

async function showApp(): Promise<void> {
  const session = loadSession();
  if (!session) return showLogin();
  byId('login-view').hidden = true;
  byId('app-view').hidden = false;
  byId('nav').hidden = false;
  byId('logout').hidden = false;
  byId('whoami').textContent = session.username;
  siteAdmin = await isSiteAdmin();
  byId('nav-admin').hidden = !siteAdmin;
  route();
}

function route(): void {
  if (!loadSession()) return showLogin();
  const hash = location.hash || '#/pods';
  current?.dispose();
  const pod = /^#\/pods\/([^/]+)$/.exec(hash);
  current = pod ? podView(decodeURIComponent(pod[1]!)) : hash === '#/admin' && siteAdmin ? adminView() : podsView();
  for (const a of document.querySelectorAll<HTMLAnchorElement>('#nav a')) {
    const active = a.getAttribute('href') === (pod ? '#/pods' : hash);
    if (active) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  const app = byId('app-view');
  fill(app, current.root);
  // Move focus to the new screen's heading so keyboard and screen-reader users land there.
  const heading = app.querySelector('h1');
  if (heading) {
    heading.setAttribute('tabindex', '-1');
    heading.focus({ preventScroll: true });
  }
  poll();
}

function poll(): void {
  window.clearTimeout(timer);
  const view = current;
  if (!view) return;
  const next = () => {
    if (current === view) timer = window.setTimeout(poll, POLL_MS);
  };
  if (document.hidden) return next();
  view.refresh().catch(() => undefined).finally(next);
}

function init(): void {
  setUnauthorizedHandler((message) => {
    clearSession();
    showLogin(`Please log in again: ${message}`);
  });
  const form = byId<HTMLFormElement>('login-form');
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const button = form.querySelector('button')!;
    const error = byId('login-error');
    error.textContent = '';
    button.disabled = true;
    try {
      const username = byId<HTMLInputElement>('username').value.trim();
      saveSession(await login(username, byId<HTMLInputElement>('password').value));
      form.reset();
      await showApp();
    } catch (err) {
      error.textContent = err instanceof ApiError && err.status === 401 ? 'Wrong username or password.' : (err as Error).message;
    } finally {
      button.disabled = false;
    }
  });
  byId('logout').addEventListener('click', () => {
    clearSession();
    location.hash = '';
    showLogin();
  });
  window.addEventListener('hashchange', route);
  document.addEventListener('visibilitychange', () => {
    if (!document.hidden && current) poll();
  });
  void showApp();
}

init();
