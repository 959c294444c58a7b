import 'uplot/dist/uPlot.min.css';
import './style.css';
import { render } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { ApiError, api, get, lastError, request, session, unauthorized } from './api';
import { startEvents, stopEvents, streamState } from './events';
import { useSignal } from './state';
import { InstancesPage } from './pages/instances';
import { InstancePage } from './pages/instance';
import { ImagesPage } from './pages/images';
import { NaclsPage, NaclEditorPage } from './pages/nacls';
import { BuildersPage } from './pages/builders';
import { PodsPage } from './pages/pods';
import { JobsPage, JobPage } from './pages/jobs';
import { SettingsPage } from './pages/settings';

interface Info {
  name: string;
  version: string;
  apiVersion: string;
  uptime: number;
  started: string;
  tls: boolean;
  auth: boolean;
  features: string[];
}

function useRoute(): string[] {
  const parse = () => {
    const h = location.hash.replace(/^#\/?/, '');
    return h ? h.split('/').map(decodeURIComponent) : ['instances'];
  };
  const [r, setR] = useState(parse);
  useEffect(() => {
    const f = () => {
      setR(parse());
      lastError.set(null);
    };
    addEventListener('hashchange', f);
    return () => removeEventListener('hashchange', f);
  }, []);
  return r;
}

const NAV: [string, string][] = [
  ['instances', 'Instances'],
  ['images', 'Images'],
  ['nacls', 'NaCl'],
  ['builders', 'Builders'],
  ['pods', 'Pods'],
  ['jobs', 'Jobs'],
  ['settings', 'Settings'],
];

function Login({ onDone, serverName }: { onDone: () => void; serverName: string }) {
  const [user, setUser] = useState('');
  const [pass, setPass] = useState('');
  const [err, setErr] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const submit = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    setErr(null);
    try {
      const s = await api('/v1/session', { method: 'POST', body: { username: user, password: pass }, no401: true });
      session.csrf = s.csrf ?? '';
      session.user = s.user ?? user;
      session.auth = s.auth ?? true;
      setPass('');
      onDone();
    } catch (e: any) {
      if (e instanceof ApiError && e.status === 401) setErr('Wrong user name or password.');
      else setErr(e?.message ?? String(e));
    } finally {
      setBusy(false);
    }
  };
  return (
    <main class="login-wrap">
      <form class="login" data-testid="login" onSubmit={submit} aria-labelledby="login-title">
        <h1 id="login-title">
          <span class="logo" aria-hidden="true" /> jetpack
        </h1>
        {serverName && <p class="muted">{serverName}</p>}
        <label>
          User name
          <input data-testid="login-username" name="username" autocomplete="username" required value={user} onInput={(e) => setUser(e.currentTarget.value)} autoFocus />
        </label>
        <label>
          Password
          <input data-testid="login-password" name="password" type="password" autocomplete="current-password" required value={pass} onInput={(e) => setPass(e.currentTarget.value)} />
        </label>
        {err && (
          <p class="err-text" role="alert" data-testid="login-error">
            {err}
          </p>
        )}
        <button type="submit" class="primary" data-testid="login-submit" disabled={busy}>
          {busy ? 'Signing in…' : 'Sign in'}
        </button>
      </form>
    </main>
  );
}

function ErrorBanner() {
  const err = useSignal(lastError);
  if (!err) return null;
  return (
    <div class="error-banner" role="alert" data-testid="error-banner">
      <span>{err}</span>
      <button type="button" class="icon" aria-label="Dismiss the error" onClick={() => lastError.set(null)}>
        ✕
      </button>
    </div>
  );
}

function Page({ route, info }: { route: string[]; info: Info | null }) {
  const [top, id] = route;
  switch (top) {
    case 'instances':
      return id ? <InstancePage id={id} /> : <InstancesPage />;
    case 'images':
      return <ImagesPage />;
    case 'nacls':
      return id ? <NaclEditorPage id={id} /> : <NaclsPage />;
    case 'builders':
      return <BuildersPage />;
    case 'pods':
      return <PodsPage />;
    case 'jobs':
      return id ? <JobPage id={id} /> : <JobsPage />;
    case 'settings':
      return <SettingsPage info={info} />;
    default:
      return (
        <section>
          <h1>Not found</h1>
          <p>
            No page here. <a href="#/instances">Instances</a>
          </p>
        </section>
      );
  }
}

function App() {
  const [phase, setPhase] = useState<'loading' | 'login' | 'in'>('loading');
  const [info, setInfo] = useState<Info | null>(null);
  const route = useRoute();
  const live = useSignal(streamState);
  const u401 = useSignal(unauthorized);

  const check = async () => {
    try {
      const s = await api('/v1/session', { no401: true });
      session.csrf = s.csrf ?? '';
      session.user = s.user ?? null;
      session.auth = !!s.auth;
      setPhase('in');
    } catch (e: any) {
      if (e instanceof ApiError && e.status === 401) setPhase('login');
      else if (e instanceof ApiError && e.status === 404) {
        // A server without browser sessions: rely on its own auth.
        session.csrf = '';
        session.auth = false;
        setPhase('in');
      } else {
        lastError.set(e?.message ?? String(e));
        setPhase('login');
      }
    }
  };

  useEffect(() => {
    check();
  }, []);
  useEffect(() => {
    if (u401 > 0) {
      stopEvents();
      setPhase('login');
    }
  }, [u401]);
  useEffect(() => {
    if (phase === 'in') {
      startEvents();
      get<Info>('/v1/info').then(setInfo, () => {});
    } else stopEvents();
  }, [phase]);
  useEffect(() => {
    document.title = info?.name ? `${info.name} · jetpack` : 'jetpack';
  }, [info]);

  const logout = async () => {
    try {
      await request('/v1/session', { method: 'DELETE', no401: true });
    } catch {
      /* gone already */
    }
    session.csrf = '';
    session.user = null;
    stopEvents();
    setPhase('login');
  };

  if (phase === 'loading') return <main class="login-wrap" aria-busy="true"><p class="muted">Loading…</p></main>;
  if (phase === 'login')
    return (
      <>
        <ErrorBanner />
        <Login onDone={() => { lastError.set(null); setPhase('in'); }} serverName={info?.name ?? ''} />
      </>
    );

  return (
    <div class="shell">
      <header class="top">
        <a class="brand" href="#/instances" aria-label="jetpack home">
          <span class="logo" aria-hidden="true" />
          jetpack
        </a>
        <span class="server-name" data-testid="server-name" title="Server name">{info?.name ?? ''}</span>
        <nav aria-label="Main">
          {NAV.map(([r, name]) => (
            <a href={`#/${r}`} class={route[0] === r ? 'on' : ''} aria-current={route[0] === r ? 'page' : undefined}>
              {name}
            </a>
          ))}
        </nav>
        <span class="spacer" />
        <span class={`live is-${live}`} title={live === 'live' ? 'Live updates on' : 'Connecting to the event stream'} role="status">
          <span class="dot" aria-hidden="true" />
          {live === 'live' ? 'live' : 'reconnecting'}
        </span>
        {session.auth && (
          <>
            <span class="user" data-testid="user-name">{session.user}</span>
            <button type="button" data-testid="logout" onClick={logout}>Log out</button>
          </>
        )}
      </header>
      <ErrorBanner />
      <main class="content" id="main">
        <Page route={route} info={info} />
      </main>
    </div>
  );
}

render(<App />, document.getElementById('app')!);
