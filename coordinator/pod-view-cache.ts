import type { PodView } from '../shared/api.js';
import { BoundedMap } from '../shared/bounded-map.js';
import { podKey } from '../shared/pod.js';
import type { PodRecord } from './store/pods.js';

/** What one remembered view was made of, and the view as JSON. */
interface Remembered {
  raw: PodRecord['raw'];
  note: string | null;
  reachable: boolean;
  json: string;
}

/**
 * Pods' API views as JSON, remembered per pod while what each is made of stays the same: its
 * stored fields exactly as just read (compared as strings) and whether its host is reachable
 * now. A record that differs in any of them is rendered again, so the JSON is always what the
 * record in hand gives, never an older one; who may see it is the caller's check, made on every
 * request. The views made longest ago go first past `max`.
 */
export class PodViewCache {
  private readonly views: BoundedMap<string, Remembered>;

  /**
   * `render`: the view of a record whose host is `reachable` (or that has none);
   * `reachable`: whether a host is reachable now.
   */
  constructor(
    private readonly render: (rec: PodRecord, reachable: boolean) => PodView,
    private readonly reachable: (nodeId: string) => boolean,
    max = 1000,
  ) {
    this.views = new BoundedMap(max);
  }

  json(rec: PodRecord): string {
    const key = podKey(rec.spec.tenant, rec.spec.pod_id);
    const reachable = rec.placement ? this.reachable(rec.placement.nodeId) : false;
    const hit = this.views.get(key);
    if (hit && hit.reachable === reachable && hit.note === rec.note && sameRaw(hit.raw, rec.raw)) return hit.json;
    const json = JSON.stringify(this.render(rec, reachable));
    this.views.delete(key); // set again below: the newest made goes last
    this.views.set(key, { raw: rec.raw, note: rec.note, reachable, json });
    return json;
  }
}

function sameRaw(a: PodRecord['raw'], b: PodRecord['raw']): boolean {
  return a.spec === b.spec && a.desired === b.desired && a.placement === b.placement && a.observed === b.observed && a.ports === b.ports;
}
