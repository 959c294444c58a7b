import { useEffect, useRef, useState } from 'preact/hooks';
import uPlot from 'uplot';
import { ApiError, del, enc, get, patch, post, qs, showError, streamText, api } from '../api';
import { useEvent, useResync } from '../events';
import { Badge, fmtTime, JobLog, short, Tabs, useConfirm, useFollow, useLoad, ago, Empty } from '../ui';
import { PanicIcon, type Instance } from './instances';

interface Detail extends Instance {
  ident?: any;
  latestStats?: { at: string; stats: { name: string; value: unknown }[] } | null;
  uplink?: any;
}

type Tab = 'overview' | 'log' | 'stats' | 'panics' | 'history' | 'console';

export function InstancePage({ id }: { id: string }) {
  const { data: inst, reload, error } = useLoad((s) => get<Detail>(`/v1/instances/${enc(id)}`, s), [id]);
  const [tab, setTab] = useState<Tab>('overview');
  const [alias, setAlias] = useState('');
  const [desc, setDesc] = useState('');
  const [dirty, setDirty] = useState(false);
  const [dialog, ask] = useConfirm();
  useEffect(() => {
    if (inst && !dirty) {
      setAlias(inst.alias ?? '');
      setDesc(inst.description ?? '');
    }
  }, [inst]);
  useResync(reload);
  useEvent('instance', (d) => d.id === id && reload());
  useEvent('instance-removed', (d) => d.id === id && reload());

  const save = async (e: Event) => {
    e.preventDefault();
    try {
      await patch(`/v1/instances/${enc(id)}`, { alias: alias.trim() || null, description: desc.trim() || null });
      setDirty(false);
      reload();
    } catch (err) {
      showError(err);
    }
  };
  const action = async (what: 'stop' | 'start' | 'restart') => {
    try {
      await post(`/v1/instances/${enc(id)}/${what}`);
      reload();
    } catch (e) {
      showError(e);
    }
  };
  const forget = async () => {
    if (!(await ask('Forget this instance and what is stored of it (panics included)?', 'Forget'))) return;
    try {
      await del(`/v1/instances/${enc(id)}`);
      location.hash = '#/instances';
    } catch (e) {
      showError(e);
    }
  };

  if (!inst) return <section><h1>Instance <code>{short(id, 32)}</code></h1>{error ? <p class="err-text">{error}</p> : <p class="muted">Loading…</p>}</section>;

  const tabs: [Tab, string][] = [
    ['overview', 'Overview'],
    ['log', 'Log'],
    ['stats', 'Statistics'],
    ['panics', 'Panics'],
    ['history', 'History'],
  ];
  if (inst.launched) tabs.push(['console', 'Console']);

  return (
    <section aria-labelledby="h-instance">
      <div class="page-head">
        <h1 id="h-instance">
          {inst.panicked && <PanicIcon />}
          {inst.alias || 'Instance'} <code class="muted small">{inst.id}</code>
        </h1>
        <Badge kind={inst.status}>{inst.status}</Badge>
        <div class="actions">
          {inst.launched && (
            <>
              <button type="button" onClick={() => action('start')}>Start</button>
              <button type="button" onClick={() => action('stop')}>Stop</button>
              <button type="button" onClick={() => action('restart')}>Restart</button>
            </>
          )}
          <button type="button" class="danger" onClick={forget}>Forget</button>
        </div>
      </div>
      <form class="inline-form panel" onSubmit={save} aria-label="Alias and description">
        <label>
          Alias
          <input data-testid="instance-alias" value={alias} onInput={(e) => { setAlias(e.currentTarget.value); setDirty(true); }} size={24} />
        </label>
        <label class="grow">
          Description
          <input data-testid="instance-description" value={desc} onInput={(e) => { setDesc(e.currentTarget.value); setDirty(true); }} size={60} />
        </label>
        <button type="submit" class="primary" data-testid="instance-save" disabled={!dirty}>Save</button>
      </form>
      <Tabs tabs={tabs} current={tab} onChange={setTab} label="Instance views" />
      <div id="tabpanel" role="tabpanel" aria-labelledby={`tab-${tab}`}>
        {tab === 'overview' && <Overview inst={inst} />}
        {tab === 'log' && <StreamTab path={`/v1/instances/${enc(id)}/logs${qs({ follow: true, tail: 1000 })}`} testid="instance-log" label="Instance log" />}
        {tab === 'stats' && <Stats id={id} />}
        {tab === 'panics' && <Panics id={id} />}
        {tab === 'history' && <History id={id} />}
        {tab === 'console' && <StreamTab path={`/v1/instances/${enc(id)}/console${qs({ follow: true, tail: 1000 })}`} testid="instance-console" label="Serial console" />}
      </div>
      {dialog}
    </section>
  );
}

function Overview({ inst }: { inst: Detail }) {
  return (
    <>
      <div class="cols">
        <div class="panel">
          <h2>Running on instance</h2>
          <dl class="kv">
            <dt>Image</dt>
            <dd>{inst.imageId ? <code>{inst.imageId}</code> : <span class="muted">unknown until a live update</span>}{inst.tag && <> · {inst.tag}</>}</dd>
            <dt>Service</dt>
            <dd>{inst.service ?? ''}</dd>
            <dt>IncludeOS version</dt>
            <dd>{inst.version ?? ''}</dd>
            <dt>Uplink</dt>
            <dd>{inst.uplinkUrl ?? ''}{inst.uplinkId && <span class="muted"> ({short(inst.uplinkId)})</span>}</dd>
            <dt>NaCl</dt>
            <dd>{inst.naclId ? <a href={`#/nacls/${enc(inst.naclId)}`}>{short(inst.naclId)}</a> : <span class="muted">unknown</span>}</dd>
          </dl>
        </div>
        <div class="panel">
          <h2>Instance</h2>
          <dl class="kv">
            <dt>Id</dt>
            <dd><code>{inst.id}</code></dd>
            <dt>Addresses</dt>
            <dd>{inst.addresses.join(', ')}</dd>
            <dt>Devices</dt>
            <dd>{inst.devices.join(', ')}</dd>
            <dt>Arch</dt>
            <dd>{inst.arch ?? ''}</dd>
            <dt>Remote</dt>
            <dd>{inst.remote ?? ''}</dd>
            <dt>First seen</dt>
            <dd>{fmtTime(inst.firstSeen)}</dd>
            <dt>Last seen</dt>
            <dd>{fmtTime(inst.lastSeen)} ({ago(inst.lastSeen)})</dd>
            {inst.launched && (
              <>
                <dt>Launched</dt>
                <dd>
                  {inst.launched.hypervisor}, {inst.launched.memory} MiB, {inst.launched.cpus} cpu, restart {inst.launched.restart}
                  {inst.launched.publish.length > 0 && <>, ports {inst.launched.publish.join(' ')}</>}; pod <code>{short(inst.launched.podId)}</code>
                </dd>
              </>
            )}
          </dl>
        </div>
      </div>
      <Update inst={inst} />
    </>
  );
}

function Update({ inst }: { inst: Detail }) {
  const { data: images } = useLoad((s) => get<any[]>('/v1/images' + qs({ sort: '-created', limit: 1000 }), s), []);
  const { data: builders } = useLoad((s) => get<any[]>('/v1/builders', s), []);
  const { data: nacls } = useLoad((s) => get<any[]>('/v1/nacls' + qs({ limit: 1000 }), s), []);
  const [imageId, setImageId] = useState('');
  const [force, setForce] = useState(false);
  const [builderId, setBuilderId] = useState('');
  const [naclId, setNaclId] = useState('');
  const [job, setJob] = useState<{ id: string; title: string } | null>(null);
  const [refused, setRefused] = useState<string | null>(null);

  useEffect(() => {
    if (!imageId && images?.length) setImageId(images[0].id);
  }, [images]);
  useEffect(() => {
    if (!builderId && builders?.length) setBuilderId(builders[0].id);
  }, [builders]);

  const image = images?.find((i) => i.id === imageId);
  const mismatch = !!image && (!image.uplinkUrl || !inst.uplinkUrl || image.uplinkUrl !== inst.uplinkUrl);

  const deploy = async (e: Event) => {
    e.preventDefault();
    setRefused(null);
    try {
      const j = await api(`/v1/instances/${enc(inst.id)}/deploy/${enc(imageId)}` + qs({ force: force || undefined }), { method: 'POST' });
      setJob({ id: j.id, title: 'Deploy' });
    } catch (err) {
      if (err instanceof ApiError && err.status === 409) setRefused(err.message);
      else showError(err);
    }
  };
  const upgrade = async (e: Event) => {
    e.preventDefault();
    setRefused(null);
    try {
      const j = await post(`/v1/instances/${enc(inst.id)}/upgrade`, { builderId, naclId: naclId || null, force: force || null });
      setJob({ id: j.id, title: 'Build and deploy' });
    } catch (err) {
      if (err instanceof ApiError && err.status === 409) setRefused(err.message);
      else showError(err);
    }
  };

  return (
    <div class="panel">
      <h2>Update instance</h2>
      <div class="cols">
        <form onSubmit={deploy} aria-labelledby="h-deploy">
          <h3 id="h-deploy">Deploy an existing image</h3>
          <div class="inline-form">
            <label>
              Image
              <select data-testid="deploy-image" value={imageId} onChange={(e) => { setImageId(e.currentTarget.value); setRefused(null); }}>
                {images?.length === 0 && <option value="">no images</option>}
                {(images ?? []).map((i) => (
                  <option value={i.id}>
                    {i.name}{i.tag ? ` · ${i.tag}` : ''} ({short(i.id, 8)})
                  </option>
                ))}
              </select>
            </label>
            <label class="row">
              <span>
                <input type="checkbox" data-testid="deploy-force" checked={force} onChange={(e) => setForce(e.currentTarget.checked)} /> Force
              </span>
            </label>
            <button type="submit" class="primary" data-testid="deploy" disabled={!imageId}>Deploy</button>
          </div>
          {(mismatch || refused) && (
            <p class="warnbox" data-testid="deploy-mismatch" role="alert">
              {refused ??
                (image?.uplinkUrl
                  ? `The image's uplink (${image.uplinkUrl}) differs from the instance's (${inst.uplinkUrl ?? 'unknown'}): the instance may not dock again after the update.`
                  : `The image's uplink is unknown: the instance may not dock again after the update.`)}{' '}
              Check “Force” to deploy anyway.
            </p>
          )}
          {images && images.length === 0 && <p class="muted">No images yet: upload or build one on the <a href="#/images">Images</a> page.</p>}
        </form>
        <form onSubmit={upgrade} aria-labelledby="h-upgrade">
          <h3 id="h-upgrade">Build and deploy</h3>
          <p class="muted small">Rebuilds with the instance's own uplink ({inst.uplinkUrl ?? 'unknown'}) and tag.</p>
          <div class="inline-form">
            <label>
              Builder
              <select data-testid="upgrade-builder" value={builderId} onChange={(e) => setBuilderId(e.currentTarget.value)}>
                {builders?.length === 0 && <option value="">no builders</option>}
                {(builders ?? []).map((b) => (
                  <option value={b.id}>{b.name} {b.version}</option>
                ))}
              </select>
            </label>
            <label>
              NaCl
              <select value={naclId} onChange={(e) => setNaclId(e.currentTarget.value)}>
                <option value="">the instance's own</option>
                {(nacls ?? []).map((n) => (
                  <option value={n.id}>{n.name}</option>
                ))}
              </select>
            </label>
            <button type="submit" class="primary" data-testid="upgrade-submit" disabled={!builderId}>Build and deploy</button>
          </div>
          {naclId && <p class="small"><a href={`#/nacls/${enc(naclId)}`}>Open this NaCl in the editor</a></p>}
        </form>
      </div>
      {job && <JobLog jobId={job.id} title={job.title} key={job.id} />}
    </div>
  );
}

function StreamTab({ path, testid, label }: { path: string; testid: string; label: string }) {
  const [text, setText] = useState('');
  const [state, setState] = useState<'following' | 'ended' | 'error'>('following');
  const [gen, setGen] = useState(0);
  const follow = useFollow(text);
  useEffect(() => {
    const c = new AbortController();
    setText('');
    setState('following');
    const MAX = 2_000_000;
    streamText(path, (s) => setText((t) => { const n = t + s; return n.length > MAX ? n.slice(n.length - MAX) : n; }), c.signal).then(
      () => !c.signal.aborted && setState('ended'),
      (e) => {
        if (c.signal.aborted) return;
        setState('error');
        showError(e);
      },
    );
    return () => c.abort();
  }, [path, gen]);
  useResync(() => setGen((g) => g + 1));
  return (
    <div>
      <div class="toolbar">
        <span class="muted">{state === 'following' ? 'Following new output…' : state === 'ended' ? 'The stream ended.' : 'The stream failed.'}</span>
        {state !== 'following' && <button type="button" onClick={() => setGen(gen + 1)}>Reconnect</button>}
      </div>
      <pre class="log tall" data-testid={testid} ref={follow.ref} onScroll={follow.onScroll} tabIndex={0} aria-label={label}>{text}</pre>
    </div>
  );
}

function Stats({ id }: { id: string }) {
  const { data, reload, loading } = useLoad((s) => get<{ history: any[]; latest: any }>(`/v1/instances/${enc(id)}/stats`, s), [id]);
  useResync(reload);
  const ask = async () => {
    try {
      await post(`/v1/instances/${enc(id)}/stats`);
      reload();
    } catch (e) {
      showError(e);
    }
  };
  const readings = data ? [...data.history, ...(data.latest ? [data.latest] : [])] : [];
  const series = new Map<string, [number[], number[]]>();
  for (const r of readings) {
    const t = new Date(r.at).getTime() / 1000;
    for (const s of r.stats ?? []) {
      const v = typeof s.value === 'number' ? s.value : typeof s.value === 'string' && s.value.trim() !== '' && !isNaN(+s.value) ? +s.value : null;
      if (v === null || typeof s.name !== 'string') continue;
      let e = series.get(s.name);
      if (!e) series.set(s.name, (e = [[], []]));
      e[0].push(t);
      e[1].push(v);
    }
  }
  const names = [...series.keys()].sort();
  return (
    <div>
      <div class="toolbar">
        <button type="button" onClick={ask}>Ask for STATS now</button>
        <button type="button" onClick={reload}>Refresh</button>
        <span class="muted">{readings.length} reading{readings.length === 1 ? '' : 's'}{data?.latest ? `, latest ${fmtTime(data.latest.at)}` : ''}</span>
      </div>
      <div class="charts" data-testid="stats-chart" aria-busy={loading}>
        {names.map((n) => <Chart name={n} data={series.get(n)!} />)}
        {!loading && names.length === 0 && <p class="muted">No STATS yet.</p>}
      </div>
    </div>
  );
}

function Chart({ name, data }: { name: string; data: [number[], number[]] }) {
  const ref = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | null>(null);
  useEffect(() => {
    const el = ref.current!;
    const css = getComputedStyle(document.documentElement);
    const fg = css.getPropertyValue('--muted').trim() || '#888';
    const grid = css.getPropertyValue('--border').trim() || '#ccc';
    const accent = css.getPropertyValue('--accent').trim() || '#2f81f7';
    const axis = { stroke: fg, grid: { stroke: grid, width: 1 }, ticks: { stroke: grid, width: 1 } };
    plot.current = new uPlot(
      {
        width: Math.max(240, el.clientWidth),
        height: 150,
        legend: { show: false },
        series: [{}, { label: name, stroke: accent, width: 1.5, fill: accent + '22', points: { show: data[0].length < 40 } }],
        axes: [axis, { ...axis, size: 60 }],
      },
      data,
      el,
    );
    const ro = new ResizeObserver(() => plot.current?.setSize({ width: Math.max(240, el.clientWidth), height: 150 }));
    ro.observe(el);
    return () => {
      ro.disconnect();
      plot.current?.destroy();
    };
  }, [name]);
  useEffect(() => plot.current?.setData(data), [data]);
  return (
    <figure class="chart" aria-label={`Chart of ${name}`}>
      <h3>
        {name} <span class="muted">{data[1].length ? data[1][data[1].length - 1] : ''}</span>
      </h3>
      <div ref={ref} />
    </figure>
  );
}

function Panics({ id }: { id: string }) {
  const { data, reload } = useLoad((s) => get<any[]>(`/v1/instances/${enc(id)}/panics`, s), [id]);
  const [open, setOpen] = useState<{ id: string; text: string } | null>(null);
  useResync(reload);
  useEvent('panic', (d) => d.instanceId === id && reload());
  const show = async (pid: string) => {
    try {
      const p = await get(`/v1/instances/${enc(id)}/panics/${enc(pid)}`);
      setOpen({ id: pid, text: p.text });
    } catch (e) {
      showError(e);
    }
  };
  return (
    <div>
      <div class="table-wrap">
        <table class="grid">
          <thead>
            <tr>
              <th scope="col">Panic</th>
              <th scope="col">When</th>
              <th scope="col">Size</th>
              <th scope="col"><span class="sr-only">Actions</span></th>
            </tr>
          </thead>
          <tbody>
            {data?.length === 0 && <Empty cols={4}>No panics reported.</Empty>}
            {(data ?? []).map((p) => (
              <tr data-testid="panic-row" data-id={p.id}>
                <td class="mono">{p.id}</td>
                <td>{fmtTime(p.created)}</td>
                <td class="num">{p.size}</td>
                <td class="row-actions"><button type="button" onClick={() => show(p.id)}>Show</button></td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      {open && (
        <>
          <h3>Panic {open.id}</h3>
          <pre class="log tall" tabIndex={0} aria-label="Panic text">{open.text}</pre>
        </>
      )}
    </div>
  );
}

function History({ id }: { id: string }) {
  const { data, reload } = useLoad((s) => get<any[]>(`/v1/instances/${enc(id)}/history`, s), [id]);
  useResync(reload);
  useEvent('instance', (d) => d.id === id && reload());
  const rows = [...(data ?? [])].reverse();
  return (
    <div class="table-wrap">
      <table class="grid">
        <thead>
          <tr>
            <th scope="col">When</th>
            <th scope="col">Event</th>
            <th scope="col">Detail</th>
          </tr>
        </thead>
        <tbody>
          {data?.length === 0 && <Empty cols={3}>No events yet.</Empty>}
          {rows.map((h) => (
            <tr data-testid="history-row">
              <td>{fmtTime(h.at)}</td>
              <td><Badge kind={h.event}>{h.event}</Badge></td>
              <td>{h.detail}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}
