import { request as httpRequest } from 'node:http';

/** An HTTP answer as the tests read it. */
export interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
  text: string;
  /** The body parsed as JSON (undefined when it is not JSON). */
  json: unknown;
}

/**
 * Sends one request to a dashboard exactly as given — the path is not normalised (`..` stays
 * `..`, as fetch would not keep it) and any Host header can be sent — and reads the whole answer.
 */
export function send(base: string, path: string, options: { method?: string; headers?: Record<string, string> } = {}): Promise<Answer> {
  const url = new URL(base);
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: url.hostname, port: url.port, path, method: options.method ?? 'GET', headers: options.headers ?? {} }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => {
        const body = Buffer.concat(chunks);
        const text = body.toString('utf8');
        let json: unknown;
        try {
          json = JSON.parse(text);
        } catch {
          json = undefined;
        }
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body, text, json });
      });
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

/** A GET that must answer 200 with JSON; its value. */
export async function getJson<T>(base: string, path: string, headers: Record<string, string> = {}): Promise<T> {
  const answer = await send(base, path, { headers });
  if (answer.status !== 200) throw new Error(`GET ${path}: ${answer.status} ${answer.text}`);
  return answer.json as T;
}

/** One server-sent event. */
export interface ServerEvent {
  event: string;
  data: string;
}

/** An open event stream: the events received so far, and a way to wait for one. */
export interface EventStream {
  status: number;
  contentType: string | undefined;
  received: ServerEvent[];
  /** Resolves with the first event (already received or to come) that `match` accepts; rejects if the stream ends or the deadline passes first. */
  next(match: (event: ServerEvent) => boolean, what: string, deadlineMs?: number): Promise<ServerEvent>;
  /** Resolves once the server ended the stream. */
  ended: Promise<void>;
  close(): void;
}

/** Opens a text/event-stream and parses its events as they come. */
export function openEvents(base: string, path: string): Promise<EventStream> {
  const url = new URL(base);
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: url.hostname, port: url.port, path, headers: { accept: 'text/event-stream' } }, (res) => {
      const received: ServerEvent[] = [];
      const waiters = new Set<() => void>();
      let buffer = '';
      let done = false;
      let endStream: () => void = () => undefined;
      const ended = new Promise<void>((resolveEnd) => (endStream = resolveEnd));
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        buffer += chunk;
        let cut: number;
        while ((cut = buffer.indexOf('\n\n')) >= 0) {
          const block = buffer.slice(0, cut);
          buffer = buffer.slice(cut + 2);
          let event = 'message';
          const data: string[] = [];
          for (const line of block.split('\n')) {
            if (line.startsWith('event:')) event = line.slice(6).trim();
            else if (line.startsWith('data:')) data.push(line.slice(5).replace(/^ /, ''));
          }
          if (data.length > 0) received.push({ event, data: data.join('\n') });
        }
        for (const waiter of waiters) waiter();
      });
      const finish = (): void => {
        done = true;
        endStream();
        for (const waiter of waiters) waiter();
      };
      res.on('end', finish);
      res.on('close', finish);
      resolve({
        status: res.statusCode ?? 0,
        contentType: res.headers['content-type'],
        received,
        ended,
        next: (match, what, deadlineMs = 30_000) =>
          new Promise((resolveNext, rejectNext) => {
            const timer = setTimeout(() => {
              waiters.delete(check);
              rejectNext(new Error(`no event ${what} within ${deadlineMs} ms; received ${JSON.stringify(received)}`));
            }, deadlineMs);
            const check = (): void => {
              const found = received.find(match);
              if (found !== undefined || done) {
                waiters.delete(check);
                clearTimeout(timer);
                if (found !== undefined) resolveNext(found);
                else rejectNext(new Error(`the stream ended without an event ${what}; received ${JSON.stringify(received)}`));
              }
            };
            waiters.add(check);
            check();
          }),
        close: () => req.destroy(),
      });
    });
    req.on('error', reject);
    req.end();
  });
}
