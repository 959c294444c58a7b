// Small shared pieces: loading hook, dialogs, job log, formatting, tabs.
import type { ComponentChildren, JSX } from 'preact';
import { useCallback, useEffect, useRef, useState } from 'preact/hooks';
import { get, showError, streamText, enc } from './api';
import { useEvent } from './events';

export function useLoad<T>(fn: (signal: AbortSignal) => Promise<T>, deps: unknown[]) {
  const [data, setData] = useState<T | undefined>(undefined);
  const [loading, setLoading] = useState(true);
  const [error, setError] = useState<string | null>(null);
  const ctl = useRef<AbortController | null>(null);
  const reload = useCallback(() => {
    ctl.current?.abort();
    const c = new AbortController();
    ctl.current = c;
    setLoading(true);
    fn(c.signal).then(
      (d) => {
        if (c.signal.aborted) return;
        setData(d);
        setError(null);
        setLoading(false);
      },
      (e) => {
        if (c.signal.aborted) return;
        setLoading(false);
        setError(e?.message ?? String(e));
        showError(e);
      },
    );
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, deps);
  useEffect(() => {
    reload();
    return () => ctl.current?.abort();
  }, [reload]);
  return { data, loading, error, reload, setData };
}

/** Calls fn at most once per `ms` (trailing), for reloads triggered by events. */
export function useThrottled(fn: () => void, ms: number) {
  const ref = useRef(fn);
  ref.current = fn;
  const timer = useRef<ReturnType<typeof setTimeout> | null>(null);
  const last = useRef(0);
  useEffect(() => () => { if (timer.current) clearTimeout(timer.current); }, []);
  return useCallback(() => {
    if (timer.current) return;
    const wait = Math.max(0, last.current + ms - Date.now());
    timer.current = setTimeout(() => {
      timer.current = null;
      last.current = Date.now();
      ref.current();
    }, wait);
  }, [ms]);
}

export function fmtBytes(n: number | null | undefined): string {
  if (n == null) return '';
  const u = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  let v = n;
  while (v >= 1024 && i < u.length - 1) {
    v /= 1024;
    i++;
  }
  return (i ? v.toFixed(v < 10 ? 1 : 0) : String(v)) + ' ' + u[i];
}

export function fmtTime(s: string | null | undefined): string {
  if (!s) return '';
  const d = new Date(s);
  if (isNaN(d.getTime())) return s;
  const p = (n: number) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}

export function ago(s: string | null | undefined): string {
  if (!s) return '';
  const t = new Date(s).getTime();
  if (isNaN(t)) return s;
  const sec = Math.round((Date.now() - t) / 1000);
  if (sec < 5) return 'just now';
  if (sec < 60) return `${sec} s ago`;
  if (sec < 3600) return `${Math.floor(sec / 60)} min ago`;
  if (sec < 86400) return `${Math.floor(sec / 3600)} h ago`;
  return `${Math.floor(sec / 86400)} d ago`;
}

export const short = (id: string | null | undefined, n = 12) => (id ? (id.length > n ? id.slice(0, n) : id) : '');

export function Badge({ kind, children }: { kind: string; children: ComponentChildren }) {
  return <span class={`badge b-${kind}`}>{children}</span>;
}

/** A modal confirmation: `const [dialog, ask] = useConfirm(); if (await ask('Delete?')) ...` */
export function useConfirm(): [JSX.Element | null, (msg: string, yes?: string) => Promise<boolean>] {
  const [state, setState] = useState<{ msg: string; yes: string; resolve: (v: boolean) => void } | null>(null);
  const ask = useCallback(
    (msg: string, yes = 'Delete') => new Promise<boolean>((resolve) => setState({ msg, yes, resolve })),
    [],
  );
  const close = (v: boolean) => {
    state?.resolve(v);
    setState(null);
  };
  const el = state ? (
    <Modal title="Please confirm" onClose={() => close(false)}>
      <p>{state.msg}</p>
      <div class="actions">
        <button type="button" data-testid="cancel" onClick={() => close(false)}>Cancel</button>
        <button type="button" class="danger" data-testid="confirm" onClick={() => close(true)}>{state.yes}</button>
      </div>
    </Modal>
  ) : null;
  return [el, ask];
}

export function Modal({ title, onClose, children, wide }: { title: string; onClose: () => void; children: ComponentChildren; wide?: boolean }) {
  const ref = useRef<HTMLDialogElement>(null);
  useEffect(() => {
    const d = ref.current!;
    if (!d.open) d.showModal();
    const onCancel = (e: Event) => {
      e.preventDefault();
      onClose();
    };
    d.addEventListener('cancel', onCancel);
    return () => d.removeEventListener('cancel', onCancel);
  }, [onClose]);
  return (
    <dialog ref={ref} class={wide ? 'modal wide' : 'modal'} aria-labelledby="modal-title">
      <div class="modal-head">
        <h2 id="modal-title">{title}</h2>
        <button type="button" class="icon" aria-label="Close" onClick={onClose}>✕</button>
      </div>
      {children}
    </dialog>
  );
}

/** Follows a text stream into a `pre` that keeps to the bottom unless scrolled up. */
export function useFollow(dep: unknown) {
  const ref = useRef<HTMLPreElement>(null);
  const stick = useRef(true);
  useEffect(() => {
    const el = ref.current;
    if (el && stick.current) el.scrollTop = el.scrollHeight;
  }, [dep]);
  const onScroll = () => {
    const el = ref.current;
    if (el) stick.current = el.scrollTop + el.clientHeight >= el.scrollHeight - 8;
  };
  return { ref, onScroll };
}

export interface Job {
  id: string;
  kind: string;
  state: 'queued' | 'running' | 'succeeded' | 'failed' | 'cancelled';
  progress: number;
  error?: string | null;
  result?: any;
  target?: string | null;
  created: string;
  started?: string | null;
  finished?: string | null;
}

export const jobEnded = (s: string) => s === 'succeeded' || s === 'failed' || s === 'cancelled';

/**
 * A job's log, streamed from GET /v1/jobs/{id}/log until the job ends, with
 * its state and progress from the event stream; onDone gets the final job.
 */
export function JobLog({ jobId, onDone, title }: { jobId: string; onDone?: (job: Job) => void; title?: string }) {
  const [text, setText] = useState('');
  const [job, setJob] = useState<Job | null>(null);
  const follow = useFollow(text);
  const done = useRef(false);
  const doneRef = useRef(onDone);
  doneRef.current = onDone;

  const finish = useCallback(async () => {
    try {
      const j = await get<Job>(`/v1/jobs/${enc(jobId)}`);
      setJob(j);
      if (jobEnded(j.state) && !done.current) {
        done.current = true;
        doneRef.current?.(j);
      }
    } catch (e) {
      showError(e);
    }
  }, [jobId]);

  useEffect(() => {
    const c = new AbortController();
    setText('');
    done.current = false;
    get<Job>(`/v1/jobs/${enc(jobId)}`, c.signal).then(setJob, () => {});
    streamText(`/v1/jobs/${enc(jobId)}/log`, (s) => setText((t) => t + s), c.signal)
      .then(() => finish())
      .catch((e) => {
        if (!c.signal.aborted) showError(e);
      });
    return () => c.abort();
  }, [jobId]);

  useEvent('job', (d) => {
    if (d.id !== jobId) return;
    setJob((j) => (j ? { ...j, state: d.state, progress: d.progress } : j));
    if (jobEnded(d.state)) finish();
  });

  const pct = job ? Math.round((job.progress ?? 0) * 100) : 0;
  return (
    <section class="joblog" aria-label={title ?? 'Job log'}>
      <div class="joblog-head">
        <span>
          {title ?? 'Job'} <a href={`#/jobs/${jobId}`}><code>{short(jobId)}</code></a>
        </span>
        {job && <Badge kind={job.state}>{job.state}</Badge>}
        <progress max={100} value={pct} aria-label="Job progress">{pct}%</progress>
        <span class="muted">{pct}%</span>
      </div>
      {job?.error && <p class="err-text">{job.error}</p>}
      <pre class="log" data-testid="job-log" ref={follow.ref} onScroll={follow.onScroll} tabIndex={0} aria-label="Job log output">{text}</pre>
    </section>
  );
}

export function Tabs<T extends string>({ tabs, current, onChange, label }: { tabs: [T, string][]; current: T; onChange: (t: T) => void; label: string }) {
  const onKey = (e: KeyboardEvent) => {
    const i = tabs.findIndex(([t]) => t === current);
    let n = -1;
    if (e.key === 'ArrowRight') n = (i + 1) % tabs.length;
    else if (e.key === 'ArrowLeft') n = (i - 1 + tabs.length) % tabs.length;
    if (n >= 0) {
      e.preventDefault();
      onChange(tabs[n][0]);
      (document.getElementById(`tab-${tabs[n][0]}`) as HTMLElement | null)?.focus();
    }
  };
  return (
    <div class="tabs" role="tablist" aria-label={label} onKeyDown={onKey}>
      {tabs.map(([t, name]) => (
        <button
          type="button"
          role="tab"
          id={`tab-${t}`}
          data-testid={`tab-${t}`}
          aria-selected={t === current}
          aria-controls="tabpanel"
          tabIndex={t === current ? 0 : -1}
          class={t === current ? 'tab on' : 'tab'}
          onClick={() => onChange(t)}
        >
          {name}
        </button>
      ))}
    </div>
  );
}

export function Empty({ cols, children }: { cols: number; children: ComponentChildren }) {
  return (
    <tr>
      <td colSpan={cols} class="empty">{children}</td>
    </tr>
  );
}

export async function copyText(s: string) {
  try {
    await navigator.clipboard.writeText(s);
  } catch {
    const t = document.createElement('textarea');
    t.value = s;
    document.body.appendChild(t);
    t.select();
    document.execCommand('copy');
    t.remove();
  }
}
