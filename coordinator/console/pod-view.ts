import type { PodView } from '../../shared/api.js';
import { ApiError, call, loadSession, podPath } from './api.js';
import { announce, fill, h, when } from './dom.js';
import { setBadge } from './pods-view.js';
import { followLogs } from './sse.js';
import { usageCharts, type PodMetrics } from './usage-chart.js';
import type { View } from './view.js';

// One pod: status, URLs, actions, credentials, its log (followed live) and its events.

interface PodEvent {
  time: string;
  type: string;
  message: string;
  node?: string;
}

const MAX_LOG_PIECES = 2000;

/** The address a user opens for an HTTP entry: the pod's host name, on this page's scheme. */
function openUrl(url: string): string {
  return `${location.protocol}//${url}/`;
}

async function copy(text: string, what: string, button: HTMLButtonElement): Promise<void> {
  try {
    await navigator.clipboard.writeText(text);
    button.textContent = 'Copied';
    announce(`${what} copied to the clipboard.`);
  } catch {
    button.textContent = 'Select and copy by hand';
  }
  window.setTimeout(() => (button.textContent = 'Copy'), 2000);
}

function copyable(label: string, value: string, id: string): HTMLElement {
  const input = h('input', { id, readonly: true, value, spellcheck: 'false' });
  input.value = value;
  const button = h('button', { type: 'button', 'aria-label': `Copy ${label.toLowerCase()}` }, 'Copy');
  button.addEventListener('click', () => void copy(value, label, button));
  return h('div', { class: 'field copy' }, h('label', { for: id }, label), h('div', { class: 'row' }, input, button));
}

export function podView(podId: string): View {
  const title = h('h1', { id: 'pod-h' }, podId);
  const badge = h('span', { id: 'pod-status', class: 'status' });
  const message = h('p', { class: 'muted', id: 'pod-message' });
  const facts = h('dl', { class: 'facts' });
  const urls = h('ul', { class: 'urls', 'aria-label': 'Addresses' });
  const actionError = h('p', { class: 'error', role: 'alert' });

  const action = (label: string, verb: string, confirmText?: string) => {
    const b = h('button', { type: 'button', 'data-action': verb }, label);
    b.addEventListener('click', async () => {
      if (confirmText && !window.confirm(confirmText)) return;
      actionError.textContent = '';
      b.disabled = true;
      try {
        if (verb === 'delete') {
          await call('DELETE', podPath(podId));
          announce(`Pod ${podId} deleted.`);
          location.hash = '#/pods';
          return;
        }
        await call('GET', podPath(podId, `/${verb}`));
        announce(`${label} requested for ${podId}.`);
        if (verb !== 'stop') restartFollow();
        await refresh();
      } catch (err) {
        actionError.textContent = (err as Error).message;
      } finally {
        b.disabled = false;
      }
    });
    return b;
  };
  const actions = h('div', { class: 'actions', role: 'group', 'aria-label': 'Pod actions' },
    action('Start', 'start'), action('Stop', 'stop'), action('Restart', 'restart'),
    action('Delete', 'delete', `Delete pod ${podId}? Its container and its data are removed.`),
  );

  // Credentials: fetched only when asked for, never polled.
  const credsBox = h('div', { id: 'creds' });
  const credsButton = h('button', { type: 'button', id: 'show-creds' }, 'Show credentials');
  credsButton.addEventListener('click', async () => {
    try {
      const c = await call<{ user_username: string; user_password: string }>('GET', podPath(podId, '/credentials'));
      fill(credsBox, copyable('Username', c.user_username, 'cred-user'), copyable('Password', c.user_password, 'cred-password'));
      credsButton.hidden = true;
    } catch (err) {
      fill(credsBox, h('p', { class: 'error', role: 'alert' }, (err as ApiError).message));
    }
  });

  // The log, followed with fetch streaming while "Follow" is on.
  const log = h('pre', { id: 'pod-log', class: 'log', tabindex: 0, role: 'log', 'aria-label': `Output of ${podId}`, 'aria-live': 'off' });
  const follow = h('input', { type: 'checkbox', id: 'follow-log', checked: true });
  const logState = h('span', { class: 'muted', id: 'log-state' });
  let following: AbortController | null = null;
  const addLines = (lines: string[]) => {
    const atBottom = log.scrollTop + log.clientHeight >= log.scrollHeight - 4;
    log.append(lines.join('\n') + '\n');
    // Keep the page small: drop the oldest pieces of output past the limit.
    while (log.childNodes.length > MAX_LOG_PIECES) log.firstChild?.remove();
    if (atBottom) log.scrollTop = log.scrollHeight;
  };
  const startFollow = () => {
    stopFollow();
    const session = loadSession();
    if (!session) return;
    log.replaceChildren();
    const ctl = new AbortController();
    following = ctl;
    logState.textContent = 'following';
    void followLogs(podPath(podId, '/logs?follow=true&tail=200'), session.token, {
      lines: addLines,
      ended(reason) {
        if (following !== ctl) return;
        following = null;
        logState.textContent = `stopped following: ${reason}`;
      },
    }, ctl.signal);
  };
  const stopFollow = () => {
    following?.abort();
    following = null;
    logState.textContent = '';
  };
  const restartFollow = () => {
    if (follow.checked) window.setTimeout(startFollow, 500);
  };
  const loadStatic = async () => {
    try {
      const r = await call<{ logs: string }>('GET', podPath(podId, '/logs'));
      log.replaceChildren(r.logs);
      log.scrollTop = log.scrollHeight;
    } catch (err) {
      logState.textContent = (err as Error).message;
    }
  };
  follow.addEventListener('change', () => (follow.checked ? startFollow() : (stopFollow(), void loadStatic())));

  const events = h('tbody');
  const metrics = h('div', { id: 'pod-metrics' }, h('p', { class: 'muted' }, 'Loading usage…'));
  // Usage is asked of the pod's host, which samples every few seconds: no need to ask every poll.
  let metricsDue = 0;
  const refreshMetrics = async () => {
    if (Date.now() < metricsDue) return;
    try {
      const m = await call<PodMetrics>('GET', podPath(podId, '/metrics'));
      fill(metrics, usageCharts(m));
      metricsDue = Date.now() + Math.max(5, m.interval_s) * 1000;
    } catch (err) {
      fill(metrics, h('p', { class: 'muted' }, `Usage is not available now: ${(err as Error).message}`));
      metricsDue = Date.now() + 10_000;
    }
  };

  const root = h('div', { class: 'pod-view' },
    h('p', {}, h('a', { href: '#/pods' }, '← All pods')),
    h('section', { class: 'card', 'aria-labelledby': 'pod-h' },
      h('div', { class: 'pod-head' }, title, badge), message, facts, urls, actions, actionError),
    h('section', { class: 'card', 'aria-labelledby': 'creds-h' }, h('h2', { id: 'creds-h' }, 'Credentials'), credsButton, credsBox),
    h('section', { class: 'card', 'aria-labelledby': 'log-h' },
      h('div', { class: 'row spread' }, h('h2', { id: 'log-h' }, 'Log'),
        h('span', { class: 'row' }, h('label', { class: 'inline' }, follow, ' Follow'), logState)),
      log),
    h('section', { class: 'card', 'aria-labelledby': 'events-h' }, h('h2', { id: 'events-h' }, 'Events'),
      h('div', { class: 'table-wrap' }, h('table', { class: 'events' },
        h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'Time'), h('th', { scope: 'col' }, 'Event'), h('th', { scope: 'col' }, 'Message'))),
        events))),
    h('section', { class: 'card', 'aria-labelledby': 'metrics-h' }, h('h2', { id: 'metrics-h' }, 'Usage (last hour)'), metrics),
  );

  let lastStatus = '';
  async function refresh(): Promise<void> {
    let pod: PodView;
    try {
      pod = await call<PodView>('GET', podPath(podId));
    } catch (err) {
      message.textContent = err instanceof ApiError && err.status === 404 ? 'This pod does not exist (any more).' : (err as Error).message;
      setBadge(badge, 'UNKNOWN');
      stopFollow();
      return;
    }
    setBadge(badge, pod.status);
    if (pod.status !== lastStatus && lastStatus) announce(`${podId} is ${pod.status}.`);
    // A pod that has just (re)started has a new run to follow.
    if (pod.status === 'RUNNING' && lastStatus && lastStatus !== 'RUNNING' && follow.checked && !following) startFollow();
    lastStatus = pod.status;
    message.textContent = String(pod.status_container.message ?? '');
    const fact = (k: string, v: string | null | undefined) => (v ? [h('dt', {}, k), h('dd', {}, v)] : []);
    fill(facts,
      ...fact('Image', pod.image), ...fact('Template', pod.template), ...fact('Description', pod.description),
      ...fact('Node', typeof pod.status_container.node === 'string' ? pod.status_container.node : ''),
      ...fact('Created', when(pod.creation_ts)), ...fact('Started', when(pod.start_instance_ts)),
      ...fact('Stops at', when(pod.time_to_stop_ts)),
    );
    fill(urls, ...Object.entries(pod.networking).filter(([, n]) => n.url).map(([name, n]) =>
      h('li', {}, h('span', { class: 'muted' }, `${name} (${n.protocol}): `),
        n.protocol === 'http'
          ? h('a', { href: openUrl(n.url), target: '_blank', rel: 'noopener noreferrer' }, `Open ${n.url}`)
          : h('code', {}, n.url))));
    const [list] = await Promise.all([call<PodEvent[]>('GET', podPath(podId, '/events')).catch(() => null), refreshMetrics()]);
    if (list) {
      fill(events, ...list.slice(-50).reverse().map((e) =>
        h('tr', {}, h('td', {}, when(e.time)), h('td', {}, e.type), h('td', {}, e.message))));
    }
  }

  startFollow();
  return {
    root,
    refresh,
    dispose: stopFollow,
  };
}
