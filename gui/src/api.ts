// The console's only backend: the REST API v1 (docs/openapi.json).
import { signal } from './state';

export interface ApiErrorBody {
  code: string;
  message: string;
  errors?: Diagnostic[] | null;
  warnings?: Diagnostic[] | null;
}
export interface Diagnostic {
  line: number;
  column: number;
  message: string;
  severity?: 'error' | 'warning';
}

export class ApiError extends Error {
  status: number;
  body: ApiErrorBody;
  constructor(status: number, body: ApiErrorBody) {
    super(body.message || `HTTP ${status}`);
    this.status = status;
    this.body = body;
  }
}

/** The session: CSRF token and user, set by login or GET /v1/session. */
export const session = { csrf: '', user: null as string | null, auth: false };

/** Called when any request answers 401: back to the login view. */
export const unauthorized = signal(0);
/** The last API error, for the error banner. */
export const lastError = signal<string | null>(null);

export function showError(e: unknown) {
  if (e instanceof ApiError && e.status === 401) return;
  if (e instanceof DOMException && e.name === 'AbortError') return;
  const msg = e instanceof Error ? e.message : String(e);
  lastError.set(msg);
}

function headers(method: string, extra?: Record<string, string>): Record<string, string> {
  const h: Record<string, string> = { 'X-Requested-With': 'jetpack', ...extra };
  if (method !== 'GET' && method !== 'HEAD' && session.csrf) h['X-CSRF-Token'] = session.csrf;
  return h;
}

async function errorOf(res: Response): Promise<ApiError> {
  let body: ApiErrorBody;
  const text = await res.text().catch(() => '');
  try {
    body = JSON.parse(text);
    if (typeof body.message !== 'string') body.message = text || res.statusText;
  } catch {
    body = { code: String(res.status), message: text || `${res.status} ${res.statusText}` };
  }
  if (res.status === 429) {
    const after = res.headers.get('Retry-After');
    if (after) body.message += ` (retry after ${after} s)`;
  }
  return new ApiError(res.status, body);
}

export interface RequestOptions {
  method?: string;
  body?: unknown;
  text?: string;
  accept?: string;
  signal?: AbortSignal;
  /** Do not treat a 401 as the end of the session (the login itself). */
  no401?: boolean;
}

export async function request(path: string, opts: RequestOptions = {}): Promise<Response> {
  const method = opts.method ?? 'GET';
  const extra: Record<string, string> = {};
  let body: BodyInit | undefined;
  if (opts.text !== undefined) {
    body = opts.text;
    extra['Content-Type'] = 'text/plain; charset=utf-8';
  } else if (opts.body !== undefined) {
    body = JSON.stringify(opts.body);
    extra['Content-Type'] = 'application/json';
  }
  extra['Accept'] = opts.accept ?? 'application/json';
  const res = await fetch(path, {
    method,
    body,
    headers: headers(method, extra),
    credentials: 'same-origin',
    signal: opts.signal,
    cache: 'no-store',
  });
  if (!res.ok) {
    const err = await errorOf(res);
    if (res.status === 401 && !opts.no401) unauthorized.set(unauthorized.get() + 1);
    throw err;
  }
  return res;
}

export async function api<T = any>(path: string, opts: RequestOptions = {}): Promise<T> {
  const res = await request(path, opts);
  if (res.status === 204) return undefined as T;
  const text = await res.text();
  return (text ? JSON.parse(text) : undefined) as T;
}

/** A list with its X-Total-Count. */
export async function list<T = any>(path: string, signal?: AbortSignal): Promise<{ items: T[]; total: number }> {
  const res = await request(path, { signal });
  const items = (await res.json()) as T[];
  const total = Number(res.headers.get('X-Total-Count') ?? items.length);
  return { items, total: Number.isFinite(total) ? total : items.length };
}

export const get = <T = any>(p: string, signal?: AbortSignal) => api<T>(p, { signal });
export const post = <T = any>(p: string, body?: unknown) => api<T>(p, { method: 'POST', body });
export const put = <T = any>(p: string, body?: unknown) => api<T>(p, { method: 'PUT', body });
export const patch = <T = any>(p: string, body?: unknown) => api<T>(p, { method: 'PATCH', body });
export const del = <T = any>(p: string) => api<T>(p, { method: 'DELETE' });

export function qs(params: Record<string, string | number | boolean | undefined | null>): string {
  const u = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== '') u.set(k, String(v));
  const s = u.toString();
  return s ? '?' + s : '';
}

export const enc = encodeURIComponent;

/**
 * Reads a streamed text answer (a job's log, an instance's log with
 * follow=true), calling onText with each decoded piece until it ends or
 * the signal aborts.
 */
export async function streamText(path: string, onText: (s: string) => void, signal: AbortSignal): Promise<void> {
  const res = await request(path, { accept: 'text/plain', signal });
  if (!res.body) {
    onText(await res.text());
    return;
  }
  const reader = res.body.getReader();
  const dec = new TextDecoder();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      onText(dec.decode(value, { stream: true }));
    }
    onText(dec.decode());
  } finally {
    reader.releaseLock();
  }
}

/** Uploads a body with progress (fetch has no upload progress: XMLHttpRequest does). */
export function upload(
  path: string,
  body: Blob,
  onProgress: (loaded: number, total: number) => void,
  contentType = 'application/octet-stream',
): { promise: Promise<any>; abort: () => void } {
  const xhr = new XMLHttpRequest();
  const promise = new Promise<any>((resolve, reject) => {
    xhr.open('POST', path);
    xhr.withCredentials = true;
    xhr.setRequestHeader('X-Requested-With', 'jetpack');
    xhr.setRequestHeader('Accept', 'application/json');
    xhr.setRequestHeader('Content-Type', contentType);
    if (session.csrf) xhr.setRequestHeader('X-CSRF-Token', session.csrf);
    xhr.upload.onprogress = (e) => onProgress(e.loaded, e.lengthComputable ? e.total : body.size);
    xhr.onerror = () => reject(new Error('the upload failed (network error)'));
    xhr.onabort = () => reject(new DOMException('aborted', 'AbortError'));
    xhr.onload = () => {
      let parsed: any;
      try {
        parsed = xhr.responseText ? JSON.parse(xhr.responseText) : undefined;
      } catch {
        parsed = { code: String(xhr.status), message: xhr.responseText };
      }
      if (xhr.status >= 200 && xhr.status < 300) resolve(parsed);
      else {
        if (xhr.status === 401) unauthorized.set(unauthorized.get() + 1);
        reject(new ApiError(xhr.status, parsed ?? { code: String(xhr.status), message: xhr.statusText }));
      }
    };
    xhr.send(body);
  });
  return { promise, abort: () => xhr.abort() };
}

/** Downloads an answer as a file (with the session's cookie and headers). */
export async function download(path: string, filename: string, accept = 'application/octet-stream') {
  const res = await request(path, { accept });
  const blob = await res.blob();
  saveBlob(blob, filename);
}

export function saveBlob(blob: Blob, filename: string) {
  const url = URL.createObjectURL(blob);
  const a = document.createElement('a');
  a.href = url;
  a.download = filename;
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}
