import { badRequest, forbidden, notFound } from '../../shared/errors.js';
import type { PermLevel } from '../store/pods.js';
import type { TemplateRecord, TemplateStore } from '../store/templates.js';
import type { Identity } from './auth.js';
import { hasLevel } from './permissions.js';

// Who may do what with a template. Levels are Tapis's: READ gets it and its tags and makes pods
// from it; USER also changes it, adds tags and lists permissions; ADMIN also deletes it and sets
// permissions. Besides users by name, `TENANT` gives a level to every user of the template's
// tenant and `SITE` (READ only) to every user of the site: the site's templates have it.

/** The template belongs to another tenant and is not the site's: for the caller it does not exist. */
export const HIDDEN = 'hidden';

/**
 * The caller's level on a template. Site admins administer every template; a tenant admin
 * those of its own tenant (not the site's); everyone else has what the permissions give.
 */
export function templateLevel(identity: Identity, rec: TemplateRecord, perms: Record<string, PermLevel>): PermLevel | null | typeof HIDDEN {
  if (identity.site) return 'ADMIN';
  const ownTenant = rec.tenant_id === identity.tenant;
  if (!ownTenant && !rec.site) return HIDDEN;
  if (ownTenant && identity.admin && !rec.site) return 'ADMIN';
  let best: PermLevel | null = rec.site ? 'READ' : null;
  if (ownTenant) {
    for (const level of [perms.TENANT, perms[identity.username]]) if (level && !hasLevel(best, level)) best = level;
  }
  return best;
}

/**
 * A template the caller may act on with `need`: another tenant's is a 404, as if it did not
 * exist; one of the caller's tenant with too little access is a 403 naming what was needed.
 */
export async function loadTemplateFor(store: TemplateStore, identity: Identity, templateId: string, need: PermLevel): Promise<{ rec: TemplateRecord; perms: Record<string, PermLevel> }> {
  const rec = await store.get(templateId);
  const perms = rec ? await store.perms(templateId) : {};
  const level = rec ? templateLevel(identity, rec, perms) : HIDDEN;
  if (!rec || level === HIDDEN) throw notFound(`template "${templateId}" was not found`);
  if (!hasLevel(level, need)) throw forbidden(`you need ${need} permission on template "${templateId}" for this; you have ${level ?? 'none'}`);
  return { rec, perms };
}

/** For a pod or a tag based on a template: READ on it, or a 400 (another tenant's: as if absent) or 403 naming the field. */
export async function requireTemplateUse(store: TemplateStore, identity: Identity, rec: TemplateRecord, field: string): Promise<void> {
  const level = templateLevel(identity, rec, await store.perms(rec.template_id));
  if (level === HIDDEN) throw badRequest(`${field}: template "${rec.template_id}" does not exist; see GET /v3/pods/templates`);
  if (!hasLevel(level, 'READ')) throw forbidden(`${field}: you need READ permission on template "${rec.template_id}" to use it; it has not been shared with you`);
}

/** Templates the caller may READ. */
export async function readableTemplates(store: TemplateStore, identity: Identity): Promise<TemplateRecord[]> {
  const out = [];
  for (const rec of await store.list()) {
    const level = templateLevel(identity, rec, await store.perms(rec.template_id));
    if (level !== HIDDEN && hasLevel(level, 'READ')) out.push(rec);
  }
  return out;
}
