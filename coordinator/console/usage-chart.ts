import { h } from './dom.js';

// A pod's CPU and memory over the last hour (GET /v3/pods/{id}/metrics) as two small SVG
// line charts, each with its numbers in words beside it for those who do not see the line.

export interface PodMetrics {
  interval_s: number;
  now: { cpu_cores: number | null; memory_bytes: number; memory_limit_bytes: number } | null;
  last_hour: { cpu_cores_max: number | null; memory_bytes_max: number | null; restarts: number };
  samples: Array<{ time: string; cpu_cores: number | null; memory_bytes: number }>;
}

const SVG = 'http://www.w3.org/2000/svg';
const W = 300;
const H = 80;

function svg(tag: string, attrs: Record<string, string | number>): SVGElement {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  return el;
}

/** A line through the points (time in ms, value), scaled to [0, top]. */
function lineChart(points: Array<[number, number]>, top: number, label: string, cls: string): SVGElement {
  const chart = svg('svg', { viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-label': label, class: `chart ${cls}`, preserveAspectRatio: 'none' });
  chart.append(svg('line', { x1: 0, y1: H - 0.5, x2: W, y2: H - 0.5, class: 'axis' }));
  if (points.length >= 2) {
    const t0 = points[0]![0];
    const span = Math.max(1, points.at(-1)![0] - t0);
    const scale = top > 0 ? top : 1;
    const xy = points.map(([t, v]) => `${(((t - t0) / span) * W).toFixed(1)},${(H - 2 - (Math.min(v, scale) / scale) * (H - 6)).toFixed(1)}`);
    chart.append(svg('polyline', { points: xy.join(' '), class: 'line' }));
  }
  return chart;
}

const mb = (bytes: number) => `${(bytes / 1048576).toFixed(bytes < 10 * 1048576 ? 1 : 0)} MB`;
const cores = (c: number) => `${c < 0.1 ? c.toFixed(3) : c.toFixed(2)} cores`;

export function usageCharts(m: PodMetrics): HTMLElement {
  const samples = m.samples.map((s) => ({ t: Date.parse(s.time), cpu: s.cpu_cores, mem: s.memory_bytes })).filter((s) => !Number.isNaN(s.t));
  if (!samples.length) return h('p', { class: 'muted' }, 'No usage samples yet: the host samples a running pod every few seconds.');
  const cpuPoints = samples.filter((s) => s.cpu !== null).map((s) => [s.t, s.cpu!] as [number, number]);
  const memPoints = samples.map((s) => [s.t, s.mem] as [number, number]);
  const cpuMax = m.last_hour.cpu_cores_max ?? 0;
  const memMax = m.last_hour.memory_bytes_max ?? 0;
  const cpuNow = m.now?.cpu_cores;
  const cpuText = `CPU: now ${cpuNow === null || cpuNow === undefined ? 'unknown' : cores(cpuNow)}, highest in the last hour ${cores(cpuMax)}`;
  const memText = `Memory: now ${m.now ? mb(m.now.memory_bytes) : 'unknown'}${m.now?.memory_limit_bytes ? ` of ${mb(m.now.memory_limit_bytes)}` : ''}, highest ${mb(memMax)}`;
  return h('div', { class: 'usage' },
    h('figure', {}, lineChart(cpuPoints, Math.max(cpuMax * 1.2, 0.01), cpuText, 'cpu'), h('figcaption', {}, cpuText)),
    h('figure', {}, lineChart(memPoints, memMax * 1.2, memText, 'mem'), h('figcaption', {}, memText)),
    m.last_hour.restarts ? h('p', { class: 'muted' }, `Restarts in the last hour: ${m.last_hour.restarts}`) : null,
  );
}
