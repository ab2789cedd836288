import { call } from './api.js';
import { announce, fill, h, when } from './dom.js';
import type { View } from './view.js';

// For site admins: the Docker hosts (cordon, drain, uncordon) and the image allow-list.

interface ImageEntry {
  image: string;
  tags: string[];
  tenants: string[];
  description: string;
  creation_ts: string;
  added_by: string;
}

interface NodeView {
  node_id: string;
  state: string;
  cordoned: boolean;
  draining: boolean;
  capacity: { cpu_milli: number; memory_mb: number };
  usage: { cpu_milli: number; memory_mb: number; pods: number };
  last_heartbeat: string;
}

/** Whether the signed-in user is a site admin: only they may list nodes. */
export async function isSiteAdmin(): Promise<boolean> {
  return call('GET', '/v3/admin/nodes').then(() => true, () => false);
}

export function adminView(): View {
  const nodes = h('tbody');
  const images = h('tbody');
  const error = h('p', { class: 'error', role: 'alert' });

  const nodeAction = (node: NodeView, verb: 'cordon' | 'drain' | 'uncordon') => {
    const b = h('button', { type: 'button', 'aria-label': `${verb} ${node.node_id}` }, verb[0]!.toUpperCase() + verb.slice(1));
    b.addEventListener('click', async () => {
      if (verb === 'drain' && !window.confirm(`Drain ${node.node_id}? Every pod that can move is moved to another host.`)) return;
      b.disabled = true;
      error.textContent = '';
      try {
        await call('POST', `/v3/admin/nodes/${encodeURIComponent(node.node_id)}/${verb}`);
        announce(`${node.node_id}: ${verb} requested.`);
        await refresh();
      } catch (err) {
        error.textContent = (err as Error).message;
      } finally {
        b.disabled = false;
      }
    });
    return b;
  };

  const root = h('div', {},
    h('section', { class: 'card', 'aria-labelledby': 'nodes-h' }, h('h1', { id: 'nodes-h' }, 'Hosts'), error,
      h('div', { class: 'table-wrap' }, h('table', { id: 'nodes' },
        h('thead', {}, h('tr', {}, ...['Host', 'State', 'CPU used / capacity', 'Memory used / capacity', 'Pods', 'Last heartbeat', 'Actions'].map((c) => h('th', { scope: 'col' }, c)))),
        nodes))),
    h('section', { class: 'card', 'aria-labelledby': 'images-h' }, h('h2', { id: 'images-h' }, 'Images'),
      h('div', { class: 'table-wrap' }, h('table', { id: 'images' },
        h('thead', {}, h('tr', {}, ...['Image', 'Tags', 'Tenants', 'Description', 'Added'].map((c) => h('th', { scope: 'col' }, c)))),
        images))),
  );

  async function refresh(): Promise<void> {
    const [nodeList, imageList] = await Promise.all([
      call<NodeView[]>('GET', '/v3/admin/nodes').catch((err: Error) => ((error.textContent = err.message), null)),
      call<ImageEntry[]>('GET', '/v3/pods/images').catch(() => null),
    ]);
    if (nodeList) {
      fill(nodes, ...nodeList.map((n) => {
        const state = [n.state, n.cordoned ? 'cordoned' : '', n.draining ? 'draining' : ''].filter(Boolean).join(', ');
        return h('tr', { 'data-node': n.node_id },
          h('th', { scope: 'row' }, n.node_id), h('td', {}, state),
          h('td', {}, `${n.usage.cpu_milli} / ${n.capacity.cpu_milli} m`),
          h('td', {}, `${n.usage.memory_mb} / ${n.capacity.memory_mb} MB`),
          h('td', {}, n.usage.pods), h('td', {}, when(n.last_heartbeat)),
          h('td', {}, h('div', { class: 'actions' }, ...(n.cordoned || n.draining ? [nodeAction(n, 'uncordon')] : [nodeAction(n, 'cordon'), nodeAction(n, 'drain')]))));
      }));
    }
    if (imageList) {
      fill(images, ...imageList.map((i) => h('tr', {},
        h('th', { scope: 'row' }, i.image), h('td', {}, i.tags.join(', ') || 'any'), h('td', {}, i.tenants.join(', ')),
        h('td', {}, i.description), h('td', {}, `${when(i.creation_ts)} by ${i.added_by}`))));
    }
  }

  return { root, refresh, dispose() {} };
}
