import { useEffect, useState } from 'preact/hooks';
import { ApiError, api, del, enc, get, patch, post, qs, request, showError, upload } from '../api';
import { useEvent, useResync } from '../events';
import { Badge, Empty, fmtBytes, fmtTime, JobLog, short, useConfirm, useLoad, useThrottled, type Job } from '../ui';

export function PodsPage() {
  const pods = useLoad((s) => get<any[]>('/v1/pods' + qs({ limit: 1000 }), s), []);
  const bases = useLoad((s) => get<any[]>('/v1/bases' + qs({ limit: 1000 }), s), []);
  const [log, setLog] = useState<{ id: string; name: string; text: string } | null>(null);
  const [job, setJob] = useState<string | null>(null);
  const [dialog, ask] = useConfirm();
  const laterPods = useThrottled(pods.reload, 500);
  const laterBases = useThrottled(bases.reload, 500);
  useResync(() => {
    pods.reload();
    bases.reload();
  });
  useEvent('pod', (d) => {
    const rows = pods.data ?? [];
    const i = rows.findIndex((p) => p.id === d.id);
    if (i >= 0) {
      const n = rows.slice();
      n[i] = { ...n[i], state: d.state };
      pods.setData(n);
    }
    laterPods();
  });
  useEvent('pod-removed', () => laterPods());
  useEvent('job', (d) => d.kind === 'import' && d.state === 'succeeded' && laterBases());

  const setState = async (p: any, state: 'running' | 'exited') => {
    try {
      await patch(`/v1/pods/${enc(p.id)}`, { state });
    } catch (e) {
      showError(e);
    }
    pods.reload();
  };
  const removePod = async (p: any) => {
    try {
      await del(`/v1/pods/${enc(p.id)}`);
      pods.reload();
    } catch (e) {
      if (e instanceof ApiError && e.status === 409 && (await ask(`${e.message}. Stop and remove it (force)?`, 'Force remove'))) {
        try {
          await del(`/v1/pods/${enc(p.id)}?force=true`);
          pods.reload();
        } catch (e2) {
          showError(e2);
        }
      } else showError(e);
    }
  };
  const showLog = async (p: any) => {
    try {
      const res = await request(`/v1/pods/${enc(p.id)}/log`, { accept: 'text/plain' });
      setLog({ id: p.id, name: p.name ?? short(p.id), text: await res.text() });
    } catch (e) {
      showError(e);
    }
  };
  const removeBase = async (b: any) => {
    try {
      await del(`/v1/bases/${enc(b.id)}`);
      bases.reload();
    } catch (e) {
      if (e instanceof ApiError && e.status === 409) {
        if (await ask(`${e.message}. Remove it anyway (force)?`, 'Force remove')) {
          try {
            await del(`/v1/bases/${enc(b.id)}?force=true`);
            bases.reload();
          } catch (e2) {
            showError(e2);
          }
        }
      } else showError(e);
    }
  };

  return (
    <section aria-labelledby="h-pods">
      <div class="page-head">
        <h1 id="h-pods">Pods and bases</h1>
      </div>
      <CreatePod bases={bases.data ?? []} onDone={pods.reload} />
      <div class="table-wrap">
        <table class="grid">
          <thead>
            <tr>
              <th scope="col">Name</th>
              <th scope="col">Id</th>
              <th scope="col">State</th>
              <th scope="col">Base</th>
              <th scope="col">Command</th>
              <th scope="col">Address</th>
              <th scope="col">Started</th>
              <th scope="col">Exit</th>
              <th scope="col"><span class="sr-only">Actions</span></th>
            </tr>
          </thead>
          <tbody>
            {pods.data?.length === 0 && <Empty cols={9}>No pods.</Empty>}
            {(pods.data ?? []).map((p) => (
              <tr data-testid="pod-row" data-id={p.id}>
                <td>{p.name ?? ''}</td>
                <td class="mono">{short(p.id)}</td>
                <td><Badge kind={p.state}>{p.state}</Badge></td>
                <td>{p.baseName}</td>
                <td class="mono">{(p.command ?? []).join(' ')}</td>
                <td class="mono">{p.address ?? ''}</td>
                <td>{fmtTime(p.started)}</td>
                <td class="num">{p.exitCode ?? ''}</td>
                <td class="row-actions">
                  <button type="button" data-testid="pod-start" onClick={() => setState(p, 'running')} disabled={p.state === 'running'} aria-label={`Start ${p.name ?? p.id}`}>Start</button>{' '}
                  <button type="button" data-testid="pod-stop" onClick={() => setState(p, 'exited')} disabled={p.state !== 'running'} aria-label={`Stop ${p.name ?? p.id}`}>Stop</button>{' '}
                  <button type="button" data-testid="pod-log" onClick={() => showLog(p)} aria-label={`Log of ${p.name ?? p.id}`}>Log</button>{' '}
                  <button type="button" class="danger" data-testid="pod-remove" onClick={() => removePod(p)} aria-label={`Remove ${p.name ?? p.id}`}>Remove</button>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      {log && (
        <div class="panel">
          <div class="toolbar">
            <h2>Log of {log.name}</h2>
            <button type="button" onClick={() => showLog({ id: log.id, name: log.name })}>Refresh</button>
            <button type="button" onClick={() => setLog(null)}>Close</button>
          </div>
          <pre class="log" data-testid="pod-log-text" tabIndex={0} aria-label="Pod log">{log.text}</pre>
        </div>
      )}
      <h2>Bases</h2>
      <ImportBase onJob={setJob} />
      {job && <JobLog jobId={job} key={job} title="Import" onDone={() => bases.reload()} />}
      <div class="table-wrap">
        <table class="grid">
          <thead>
            <tr>
              <th scope="col">Name</th>
              <th scope="col">Id</th>
              <th scope="col">State</th>
              <th scope="col">Source</th>
              <th scope="col">Size</th>
              <th scope="col">Created</th>
              <th scope="col"><span class="sr-only">Actions</span></th>
            </tr>
          </thead>
          <tbody>
            {bases.data?.length === 0 && <Empty cols={7}>No bases.</Empty>}
            {(bases.data ?? []).map((b) => (
              <tr data-testid="base-row" data-id={b.id}>
                <td>{b.name}</td>
                <td class="mono">{short(b.id)}</td>
                <td><Badge kind={b.state}>{b.state}</Badge></td>
                <td class="small">{b.source}</td>
                <td class="num">{fmtBytes(b.size)}</td>
                <td>{fmtTime(b.created)}</td>
                <td class="row-actions">
                  <button type="button" class="danger" data-testid="base-remove" onClick={() => removeBase(b)} aria-label={`Remove ${b.name}`}>Remove</button>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      {dialog}
    </section>
  );
}

function CreatePod({ bases, onDone }: { bases: any[]; onDone: () => void }) {
  const [base, setBase] = useState('');
  const [name, setName] = useState('');
  useEffect(() => {
    if (!bases.some((b) => b.id === base) && bases.length) setBase(bases[0].id);
  }, [bases]);
  const [command, setCommand] = useState('');
  const [start, setStart] = useState(true);
  const submit = async (e: Event) => {
    e.preventDefault();
    const b = base || bases[0]?.id;
    if (!b) return;
    try {
      await post('/v1/pods', {
        base: b,
        name: name.trim() || null,
        command: command.trim() ? command.trim().split(/\s+/) : null,
        state: start ? 'running' : null,
      });
      setName('');
      onDone();
    } catch (err) {
      showError(err);
    }
  };
  return (
    <form class="panel inline-form" onSubmit={submit} aria-label="Create a pod">
      <label>
        Base
        <select value={base} onChange={(e) => setBase(e.currentTarget.value)}>
          {bases.map((b) => (
            <option value={b.id}>{b.name}</option>
          ))}
        </select>
      </label>
      <label>
        Name
        <input value={name} onInput={(e) => setName(e.currentTarget.value)} size={14} />
      </label>
      <label>
        Command
        <input value={command} onInput={(e) => setCommand(e.currentTarget.value)} placeholder="/bin/sh" size={24} />
      </label>
      <label>
        <span><input type="checkbox" checked={start} onChange={(e) => setStart(e.currentTarget.checked)} /> Start it</span>
      </label>
      <button type="submit" class="primary" data-testid="pod-create" disabled={!bases.length}>Create pod</button>
    </form>
  );
}

function ImportBase({ onJob }: { onJob: (id: string) => void }) {
  const [url, setUrl] = useState('');
  const [sha, setSha] = useState('');
  const [name, setName] = useState('');
  const [prog, setProg] = useState<{ loaded: number; total: number } | null>(null);
  const submit = async (e: Event) => {
    e.preventDefault();
    try {
      const j = await api<Job>('/v1/bases', { method: 'POST', body: { url: url.trim(), sha256: sha.trim() || null, name: name.trim() || null } });
      onJob(j.id);
    } catch (err) {
      showError(err);
    }
  };
  const onFile = async (e: Event) => {
    const input = e.currentTarget as HTMLInputElement;
    const f = input.files?.[0];
    if (!f) return;
    setProg({ loaded: 0, total: f.size });
    try {
      const j = await upload('/v1/bases' + qs({ name: name.trim() || f.name.replace(/\.(tar|txz|tgz|tar\.\w+)$/i, ''), sha256: sha.trim() }), f, (loaded, total) => setProg({ loaded, total })).promise;
      onJob(j.id);
    } catch (err) {
      showError(err);
    } finally {
      input.value = '';
    }
  };
  return (
    <form class="panel inline-form" onSubmit={submit} aria-label="Import a base">
      <label>
        URL
        <input type="url" value={url} onInput={(e) => setUrl(e.currentTarget.value)} placeholder="https://…/base.txz" size={34} />
      </label>
      <label>
        SHA-256
        <input value={sha} onInput={(e) => setSha(e.currentTarget.value)} size={20} pattern="[0-9a-fA-F]{64}" title="64 hex digits" />
      </label>
      <label>
        Name
        <input value={name} onInput={(e) => setName(e.currentTarget.value)} size={12} />
      </label>
      <button type="submit" class="primary" data-testid="base-import" disabled={!url.trim()}>Import</button>
      <label>
        or upload an archive
        <input type="file" data-testid="base-upload" onChange={onFile} />
      </label>
      {prog && <progress max={prog.total || 1} value={prog.loaded} aria-label="Upload progress" />}
    </form>
  );
}


