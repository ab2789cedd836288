import type { PodView } from '../../shared/api.js';
import { ApiError, call } from './api.js';
import { announce, fill, h } from './dom.js';
import type { View } from './view.js';

// The pod list (live status, kept in place between polls so focus and scroll stay put) and
// the form that creates a pod from a template or an image.

interface ImageEntry {
  image: string;
  description: string;
}

interface TemplateSummary {
  template_id: string;
  description?: string;
}

/** A status as a coloured badge (the colour repeats the word, it never replaces it). */
export function setBadge(badge: HTMLElement, status: string): void {
  badge.className = `status status-${status.toLowerCase().replace(/[^a-z]/g, '')}`;
  badge.textContent = status;
}

function podRow(): { li: HTMLLIElement; update(pod: PodView): void } {
  const link = h('a', { class: 'pod-id' });
  const badge = h('span');
  const source = h('span', { class: 'muted' });
  const message = h('span', { class: 'pod-message muted' });
  const li = h('li', { class: 'pod-row' }, h('div', { class: 'pod-head' }, link, badge), source, message);
  return {
    li,
    update(pod) {
      link.textContent = pod.pod_id;
      link.setAttribute('href', `#/pods/${encodeURIComponent(pod.pod_id)}`);
      li.dataset.podId = pod.pod_id;
      li.dataset.status = pod.status;
      setBadge(badge, pod.status);
      source.textContent = pod.template ? `template ${pod.template}` : pod.image;
      message.textContent = String(pod.status_container.message ?? '');
    },
  };
}

export function podsView(): View {
  const list = h('ul', { class: 'pod-list', 'aria-label': 'Pods', id: 'pod-list' });
  const empty = h('p', { class: 'muted', hidden: true }, 'No pods yet: create one with the form.');
  const listError = h('p', { class: 'error', role: 'alert' });
  const rows = new Map<string, ReturnType<typeof podRow>>();

  const form = createForm();
  const root = h('div', { class: 'columns' },
    h('section', { 'aria-labelledby': 'pods-h' }, h('h1', { id: 'pods-h' }, 'Pods'), listError, empty, list),
    form.root,
  );

  return {
    root,
    async refresh() {
      let pods: PodView[];
      try {
        pods = await call<PodView[]>('GET', '/v3/pods');
        listError.textContent = '';
      } catch (err) {
        listError.textContent = `Could not list pods: ${(err as Error).message}`;
        return;
      }
      pods.sort((a, b) => a.pod_id.localeCompare(b.pod_id));
      const seen = new Set<string>();
      for (const pod of pods) {
        seen.add(pod.pod_id);
        let row = rows.get(pod.pod_id);
        if (!row) {
          row = podRow();
          rows.set(pod.pod_id, row);
        }
        row.update(pod);
        list.append(row.li); // moves it into sorted order; a no-op when it is already last
      }
      for (const [id, row] of rows) {
        if (!seen.has(id)) {
          row.li.remove();
          rows.delete(id);
        }
      }
      empty.hidden = pods.length > 0;
      await form.loadChoices();
    },
    dispose() {},
  };
}

function createForm(): { root: HTMLElement; loadChoices(): Promise<void> } {
  const podId = h('input', {
    id: 'new-pod-id', name: 'pod_id', required: true, autocomplete: 'off', spellcheck: 'false',
    pattern: '[a-z][a-z0-9]{2,63}', 'aria-describedby': 'new-pod-id-hint',
  });
  const fromTemplate = h('input', { type: 'radio', name: 'source', value: 'template', id: 'src-template', checked: true });
  const fromImage = h('input', { type: 'radio', name: 'source', value: 'image', id: 'src-image' });
  const template = h('select', { id: 'new-template', name: 'template' }, h('option', { value: '' }, 'Loading templates…'));
  const image = h('input', { id: 'new-image', name: 'image', list: 'image-choices', autocomplete: 'off', spellcheck: 'false' });
  const images = h('datalist', { id: 'image-choices' });
  const description = h('input', { id: 'new-description', name: 'description', autocomplete: 'off' });
  const error = h('p', { class: 'error', role: 'alert', id: 'create-error' });
  const submit = h('button', { type: 'submit', class: 'primary' }, 'Create pod');
  const templateField = h('div', { class: 'field' }, h('label', { for: 'new-template' }, 'Template'), template);
  const imageField = h('div', { class: 'field', hidden: true }, h('label', { for: 'new-image' }, 'Image'), image, images);

  const showSource = () => {
    templateField.hidden = !fromTemplate.checked;
    imageField.hidden = !fromImage.checked;
    template.required = fromTemplate.checked;
    image.required = fromImage.checked;
  };
  fromTemplate.addEventListener('change', showSource);
  fromImage.addEventListener('change', showSource);

  const form = h('form', { class: 'card', 'aria-labelledby': 'create-h', novalidate: false },
    h('h2', { id: 'create-h' }, 'New pod'),
    h('div', { class: 'field' },
      h('label', { for: 'new-pod-id' }, 'Pod id'), podId,
      h('small', { id: 'new-pod-id-hint', class: 'muted' }, '3–64 lowercase letters and digits, starting with a letter'),
    ),
    h('fieldset', {}, h('legend', {}, 'From'),
      h('label', { class: 'inline' }, fromTemplate, ' a template'),
      h('label', { class: 'inline' }, fromImage, ' an image'),
    ),
    templateField, imageField,
    h('div', { class: 'field' }, h('label', { for: 'new-description' }, 'Description (optional)'), description),
    error, submit,
  );
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    error.textContent = '';
    const body: Record<string, string> = { pod_id: podId.value.trim() };
    if (fromTemplate.checked) body.template = template.value;
    else body.image = image.value.trim();
    if (description.value.trim()) body.description = description.value.trim();
    submit.disabled = true;
    try {
      await call('POST', '/v3/pods', body);
      announce(`Pod ${body.pod_id} created.`);
      form.reset();
      showSource();
      location.hash = `#/pods/${encodeURIComponent(body.pod_id!)}`;
    } catch (err) {
      error.textContent = err instanceof ApiError ? err.message : String(err);
    } finally {
      submit.disabled = false;
    }
  });

  let loaded = false;
  return {
    root: h('section', { 'aria-label': 'Create a pod' }, form),
    async loadChoices() {
      if (loaded) return;
      loaded = true;
      const [templates, imageList] = await Promise.all([
        call<TemplateSummary[]>('GET', '/v3/pods/templates').catch(() => [] as TemplateSummary[]),
        call<ImageEntry[]>('GET', '/v3/pods/images').catch(() => [] as ImageEntry[]),
      ]);
      fill(template, ...(templates.length
        ? templates.map((t) => h('option', { value: t.template_id }, t.description ? `${t.template_id} — ${t.description}` : t.template_id))
        : [h('option', { value: '' }, 'No templates available')]));
      fill(images, ...imageList.map((i) => h('option', { value: i.image }, i.description)));
    },
  };
}
