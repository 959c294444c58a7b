// One EventSource('/v1/events') shared by every view. The browser
// reconnects by itself (with Last-Event-ID); when the server refuses the
// stream (a closed EventSource), we check the session and open it again.
import { request, unauthorized } from './api';
import { signal } from './state';
import { useEffect, useRef } from 'preact/hooks';

export type EventType = 'counts' | 'instance' | 'instance-removed' | 'panic' | 'job' | 'pod' | 'pod-removed' | 'resync';
type Handler = (data: any) => void;

const TYPES: EventType[] = ['counts', 'instance', 'instance-removed', 'panic', 'job', 'pod', 'pod-removed', 'resync'];
const handlers = new Map<EventType, Set<Handler>>();
let source: EventSource | null = null;
let retry: ReturnType<typeof setTimeout> | undefined;
let wanted = false;
let backoff = 2000;

/** 'live' when the stream is open, 'connecting' otherwise. */
export const streamState = signal<'live' | 'connecting' | 'off'>('off');
/** The latest counts event (the Instances page's numbers). */
export const counts = signal<Record<string, number> | null>(null);

function dispatch(type: EventType, data: any) {
  if (type === 'counts') counts.set(data);
  for (const fn of [...(handlers.get(type) ?? [])]) {
    try {
      fn(data);
    } catch (e) {
      console.error(e);
    }
  }
}

function open() {
  if (!wanted || source) return;
  const es = new EventSource('/v1/events', { withCredentials: true });
  source = es;
  streamState.set('connecting');
  es.onopen = () => {
    // After a refused stream, what happened while away is unknown: reload what is shown.
    if (backoff > 2000) dispatch('resync', {});
    backoff = 2000;
    streamState.set('live');
  };
  for (const t of TYPES) {
    es.addEventListener(t, (ev) => {
      let data: any = {};
      try {
        data = JSON.parse((ev as MessageEvent).data || '{}');
      } catch {
        /* a malformed event is ignored */
      }
      dispatch(t, data);
    });
  }
  es.onerror = () => {
    if (es.readyState === EventSource.CLOSED) {
      // Refused (not a network hiccup): is the session gone?
      es.close();
      source = null;
      streamState.set('connecting');
      clearTimeout(retry);
      retry = setTimeout(async () => {
        try {
          await request('/v1/session', { no401: true });
        } catch (e: any) {
          if (e?.status === 401) {
            unauthorized.set(unauthorized.get() + 1);
            return;
          }
        }
        open();
      }, backoff);
      backoff = Math.min(backoff * 2, 60_000);
    } else {
      streamState.set('connecting');
    }
  };
}

export function startEvents() {
  wanted = true;
  open();
}

export function stopEvents() {
  wanted = false;
  clearTimeout(retry);
  source?.close();
  source = null;
  streamState.set('off');
}

export function on(type: EventType, fn: Handler): () => void {
  let set = handlers.get(type);
  if (!set) handlers.set(type, (set = new Set()));
  set.add(fn);
  return () => set!.delete(fn);
}

/** Subscribes a component to events for its lifetime (the handler may change each render). */
export function useEvent(type: EventType, fn: Handler) {
  const ref = useRef(fn);
  ref.current = fn;
  useEffect(() => on(type, (d) => ref.current(d)), [type]);
}

/** Reloads on resync (the current view's data). */
export function useResync(fn: () => void) {
  useEvent('resync', fn);
}
