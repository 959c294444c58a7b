import { useState } from 'preact/hooks';
import { del, enc, get, post, put, qs, request, saveBlob, showError } from '../api';
import { useResync } from '../events';
import { copyText, Empty, fmtTime, Modal, useConfirm, useLoad } from '../ui';
import { NaclTable } from './nacls';

interface Uplink {
  id: string; name: string; url: string; token: string; verify: boolean; reboot: boolean; ws_logging: boolean;
  serialize_ct: boolean; send_stats: number; tag?: string | null; certs?: string | null; index?: unknown; created: string; updated: string;
}

export function SettingsPage({ info }: { info: any }) {
  const uplinks = useLoad((s) => get<Uplink[]>('/v1/uplinks' + qs({ limit: 1000 }), s), []);
  const nacls = useLoad((s) => get<any[]>('/v1/nacls' + qs({ limit: 1000 }), s), []);
  const [edit, setEdit] = useState<Partial<Uplink> | null>(null);
  const [shown, setShown] = useState<Set<string>>(new Set());
  const [dialog, ask] = useConfirm();
  useResync(() => {
    uplinks.reload();
    nacls.reload();
  });
  const reveal = (id: string) => {
    const s = new Set(shown);
    s.has(id) ? s.delete(id) : s.add(id);
    setShown(s);
  };
  const remove = async (u: Uplink) => {
    if (!(await ask(`Delete the uplink ${u.name}?`))) return;
    try {
      await del(`/v1/uplinks/${enc(u.id)}`);
      uplinks.reload();
    } catch (e) {
      showError(e);
    }
  };
  return (
    <section aria-labelledby="h-settings">
      <div class="page-head">
        <h1 id="h-settings">Settings</h1>
      </div>
      <div class="panel">
        <h2>Server</h2>
        <dl class="kv">
          <dt>Name</dt><dd>{info?.name ?? ''}</dd>
          <dt>Version</dt><dd data-testid="server-version">{info?.version ?? ''}</dd>
          <dt>API version</dt><dd>{info?.apiVersion ?? ''}</dd>
          <dt>Started</dt><dd>{fmtTime(info?.started)}</dd>
          <dt>TLS, auth</dt><dd>{info ? `${info.tls ? 'TLS' : 'no TLS'}, ${info.auth ? 'authentication on' : 'authentication off'}` : ''}</dd>
          <dt>Hangar</dt><dd>{info?.hangar?.url ?? ''}</dd>
          <dt>Features</dt><dd>{(info?.features ?? []).join(', ')}</dd>
          <dt>API documentation</dt><dd><a href="/apidocs" target="_blank" rel="noopener">/apidocs</a></dd>
        </dl>
      </div>
      <div class="toolbar">
        <h2>Uplinks</h2>
        <span class="spacer" />
        <button type="button" class="primary" data-testid="uplink-create" onClick={() => setEdit({ name: '', url: '', verify: true, reboot: true, ws_logging: true, serialize_ct: false, send_stats: 0 })}>
          New uplink
        </button>
      </div>
      <div class="table-wrap">
        <table class="grid">
          <thead>
            <tr>
              <th scope="col">Name</th>
              <th scope="col">URL</th>
              <th scope="col">Token</th>
              <th scope="col">Options</th>
              <th scope="col">STATS every</th>
              <th scope="col">Tag</th>
              <th scope="col"><span class="sr-only">Actions</span></th>
            </tr>
          </thead>
          <tbody>
            {uplinks.data?.length === 0 && <Empty cols={7}>No uplinks.</Empty>}
            {(uplinks.data ?? []).map((u) => (
              <tr data-testid="uplink-row" data-id={u.id}>
                <td>{u.name} {u.name === 'default' && <span class="badge b-default">default</span>}</td>
                <td class="small">{u.url}</td>
                <td>
                  <code class="token" data-testid="uplink-token">{shown.has(u.id) ? u.token : '•'.repeat(12)}</code>{' '}
                  <button type="button" class="link" data-testid="uplink-reveal" aria-pressed={shown.has(u.id)} onClick={() => reveal(u.id)} aria-label={`${shown.has(u.id) ? 'Hide' : 'Reveal'} the token of ${u.name}`}>
                    {shown.has(u.id) ? 'hide' : 'reveal'}
                  </button>{' '}
                  <button type="button" class="link" data-testid="uplink-copy" onClick={() => copyText(u.token)} aria-label={`Copy the token of ${u.name}`}>copy</button>
                </td>
                <td class="small">
                  {[u.verify && 'verify', u.reboot && 'reboot', u.ws_logging && 'ws_logging', u.serialize_ct && 'serialize_ct'].filter(Boolean).join(', ')}
                </td>
                <td class="num">{u.send_stats ? `${u.send_stats} ms` : 'on request'}</td>
                <td>{u.tag ?? ''}</td>
                <td class="row-actions">
                  <button type="button" onClick={() => setEdit({ ...u })} aria-label={`Edit ${u.name}`}>Edit</button>{' '}
                  <button type="button" class="danger" onClick={() => remove(u)} aria-label={`Delete ${u.name}`}>Delete</button>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      {edit && <UplinkForm u={edit} onClose={() => setEdit(null)} onSaved={() => { setEdit(null); uplinks.reload(); }} />}
      <div class="toolbar">
        <h2>NaCls</h2>
        <span class="spacer" />
        <a class="btn" href="#/nacls/new">New NaCl</a>
      </div>
      <NaclTable rows={nacls.data ?? []} />
      <ServerLog />
      {dialog}
    </section>
  );
}

function UplinkForm({ u, onClose, onSaved }: { u: Partial<Uplink>; onClose: () => void; onSaved: () => void }) {
  const [v, setV] = useState<Partial<Uplink>>(u);
  const set = (k: keyof Uplink, val: unknown) => setV({ ...v, [k]: val });
  const submit = async (e: Event) => {
    e.preventDefault();
    const body = {
      name: v.name, url: v.url, token: v.token || null, verify: v.verify, reboot: v.reboot, ws_logging: v.ws_logging,
      serialize_ct: v.serialize_ct, send_stats: Number(v.send_stats ?? 0), tag: v.tag || null, certs: v.certs || null,
    };
    try {
      if (u.id) await put(`/v1/uplinks/${enc(u.id)}`, body);
      else await post('/v1/uplinks', body);
      onSaved();
    } catch (err) {
      showError(err);
    }
  };
  const check = (k: 'verify' | 'reboot' | 'ws_logging' | 'serialize_ct') => (
    <label>
      <input type="checkbox" checked={!!v[k]} onChange={(e) => set(k, e.currentTarget.checked)} /> {k}
    </label>
  );
  return (
    <Modal title={u.id ? `Edit uplink ${u.name}` : 'New uplink'} onClose={onClose}>
      <form class="form" onSubmit={submit}>
        <label for="u-name">Name</label>
        <input id="u-name" data-testid="uplink-name" required value={v.name ?? ''} onInput={(e) => set('name', e.currentTarget.value)} />
        <label for="u-url">URL</label>
        <input id="u-url" data-testid="uplink-url" required value={v.url ?? ''} onInput={(e) => set('url', e.currentTarget.value)} placeholder="https://host:9090" />
        <label for="u-token">Token</label>
        <input id="u-token" value={v.token ?? ''} onInput={(e) => set('token', e.currentTarget.value)} placeholder="a fresh random one" autocomplete="off" />
        <label for="u-stats">STATS every (ms)</label>
        <input id="u-stats" type="number" min={0} value={v.send_stats ?? 0} onInput={(e) => set('send_stats', e.currentTarget.value)} />
        <label for="u-tag">Tag</label>
        <input id="u-tag" value={v.tag ?? ''} onInput={(e) => set('tag', e.currentTarget.value)} />
        <span>Options</span>
        <div class="actions">{check('verify')}{check('reboot')}{check('ws_logging')}{check('serialize_ct')}</div>
        <div class="actions full">
          <button type="button" onClick={onClose}>Cancel</button>
          <button type="submit" class="primary" data-testid="uplink-save">Save</button>
        </div>
      </form>
    </Modal>
  );
}

function ServerLog() {
  const [lines, setLines] = useState(500);
  const log = useLoad((s) => get<string[]>('/v1/log' + qs({ lines }), s), [lines]);
  const dl = async () => {
    try {
      const res = await request('/v1/log', { accept: 'text/plain' });
      saveBlob(await res.blob(), 'jetpack.log');
    } catch (e) {
      showError(e);
    }
  };
  return (
    <div>
      <div class="toolbar">
        <h2>Server log</h2>
        <span class="spacer" />
        <label>
          Lines{' '}
          <select value={lines} onChange={(e) => setLines(Number(e.currentTarget.value))}>
            {[100, 500, 2000, 10000].map((n) => <option value={n}>{n}</option>)}
          </select>
        </label>
        <button type="button" data-testid="server-log-refresh" onClick={log.reload}>Refresh</button>
        <button type="button" data-testid="server-log-download" onClick={dl}>Download</button>
      </div>
      <pre class="log tall" data-testid="server-log" tabIndex={0} aria-label="Server log">{(log.data ?? []).join('\n')}</pre>
    </div>
  );
}
