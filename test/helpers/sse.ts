// Server-sent events as a test reads them off a real HTTP response body.

export interface SseEvent {
  id?: string;
  event?: string;
  data: string[];
}

/** Each event of the stream as it arrives (comment-only blocks, such as keepalives, are skipped). */
export async function* sseEvents(body: AsyncIterable<Buffer | string>): AsyncGenerator<SseEvent> {
  let buf = '';
  for await (const chunk of body) {
    buf += chunk.toString();
    let cut;
    while ((cut = buf.indexOf('\n\n')) >= 0) {
      const block = buf.slice(0, cut);
      buf = buf.slice(cut + 2);
      const e: SseEvent = { data: [] };
      let fields = 0;
      for (const line of block.split('\n')) {
        if (line.startsWith(':')) continue;
        const sep = line.indexOf(': ');
        const [field, value] = sep >= 0 ? [line.slice(0, sep), line.slice(sep + 2)] : [line, ''];
        fields++;
        if (field === 'data') e.data.push(value);
        else if (field === 'id') e.id = value;
        else if (field === 'event') e.event = value;
      }
      if (fields) yield e;
    }
  }
}
