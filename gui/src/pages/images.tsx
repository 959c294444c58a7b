import { useEffect, useState } from 'preact/hooks';
import { del, download, enc, get, post, qs, showError, upload } from '../api';
import { useEvent, useResync } from '../events';
import { Empty, fmtBytes, fmtTime, JobLog, Modal, short, useConfirm, useLoad, useThrottled, type Job } from '../ui';

export interface Image {
  id: string;
  name: string;
  tag?: string | null;
  size: number;
  sha256: string;
  sha1: string;
  created: string;
  builderId?: string | null;
  includeosVersion?: string | null;
  naclId?: string | null;
  uplinkId?: string | null;
  uplinkUrl?: string | null;
}

export function ImagesPage() {
  const [q, setQ] = useState('');
  const [dq, setDq] = useState('');
  useEffect(() => {
    const t = setTimeout(() => setDq(q), 250);
    return () => clearTimeout(t);
  }, [q]);
  const { data, reload } = useLoad((s) => get<Image[]>('/v1/images' + qs({ q: dq, sort: '-created', limit: 1000 }), s), [dq]);
  const [dialog, ask] = useConfirm();
  const [launch, setLaunch] = useState<Image | null>(null);
  const [fresh, setFresh] = useState<string | null>(null);
  const later = useThrottled(reload, 500);
  useResync(reload);
  useEvent('job', (d) => d.state === 'succeeded' && later());

  const remove = async (i: Image) => {
    try {
      await del(`/v1/images/${enc(i.id)}`);
      reload();
    } catch (e) {
      showError(e);
    }
  };
  const dl = (i: Image) => download(`/v1/images/${enc(i.id)}`, `${i.name || i.id}${i.tag ? '-' + i.tag : ''}.elf`).catch(showError);

  return (
    <section aria-labelledby="h-images">
      <div class="page-head">
        <h1 id="h-images">Images</h1>
      </div>
      <div class="cols">
        <Upload onDone={(id) => { setFresh(id); reload(); }} />
        <Build onDone={(id) => { setFresh(id); reload(); }} />
      </div>
      <div class="toolbar">
        <label class="grow">
          <span class="sr-only">Search images</span>
          <input type="search" data-testid="images-search" placeholder="Search id, name, tag, OS version, NaCl, uplink…" value={q} onInput={(e) => setQ(e.currentTarget.value)} />
        </label>
        <span class="muted">{data ? `${data.length} image${data.length === 1 ? '' : 's'}` : ''}</span>
      </div>
      <div class="table-wrap">
        <table class="grid">
          <thead>
            <tr>
              <th scope="col">Name</th>
              <th scope="col">Tag</th>
              <th scope="col">Id (SHA-1)</th>
              <th scope="col">Size</th>
              <th scope="col">IncludeOS</th>
              <th scope="col">NaCl</th>
              <th scope="col">Uplink</th>
              <th scope="col">Created</th>
              <th scope="col"><span class="sr-only">Actions</span></th>
            </tr>
          </thead>
          <tbody>
            {data?.length === 0 && <Empty cols={9}>No images{dq ? ' match' : ' yet: upload or build one'}.</Empty>}
            {(data ?? []).map((i) => (
              <tr data-testid="image-row" data-id={i.id} class={fresh === i.id ? 'sel' : ''}>
                <td>{i.name}</td>
                <td>{i.tag ?? ''}</td>
                <td class="mono" title={i.id}>{short(i.id)}</td>
                <td class="num">{fmtBytes(i.size)}</td>
                <td>{i.includeosVersion ?? ''}</td>
                <td>{i.naclId ? <a href={`#/nacls/${enc(i.naclId)}`}>{short(i.naclId, 8)}</a> : ''}</td>
                <td class="small">{i.uplinkUrl ?? ''}</td>
                <td>{fmtTime(i.created)}</td>
                <td class="row-actions">
                  <button type="button" data-testid="image-launch" onClick={() => setLaunch(i)} aria-label={`Launch ${i.name}`}>Launch</button>{' '}
                  <button type="button" data-testid="image-download" onClick={() => dl(i)} aria-label={`Download ${i.name}`}>Download</button>{' '}
                  <button type="button" class="danger" data-testid="image-delete" onClick={() => remove(i)} aria-label={`Delete ${i.name}`}>Delete</button>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      {launch && <Launch image={launch} onClose={() => setLaunch(null)} />}
      {dialog}
    </section>
  );
}

function Upload({ onDone }: { onDone: (id: string) => void }) {
  const [name, setName] = useState('');
  const [tag, setTag] = useState('');
  const [prog, setProg] = useState<{ loaded: number; total: number } | null>(null);
  const [msg, setMsg] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const onFile = async (e: Event) => {
    const input = e.currentTarget as HTMLInputElement;
    const f = input.files?.[0];
    if (!f) return;
    setBusy(true);
    setMsg(null);
    setProg({ loaded: 0, total: f.size });
    try {
      const img = await upload('/v1/images' + qs({ name: name.trim() || f.name.replace(/\.(elf|bin|img)$/i, ''), tag: tag.trim() }), f, (loaded, total) => setProg({ loaded, total })).promise;
      setProg({ loaded: f.size, total: f.size });
      setMsg(`Uploaded ${img.name} (${short(img.id)}).`);
      onDone(img.id);
    } catch (err) {
      setProg(null);
      showError(err);
    } finally {
      setBusy(false);
      input.value = '';
    }
  };
  const pct = prog && prog.total ? Math.round((prog.loaded / prog.total) * 100) : 0;
  return (
    <form class="panel" aria-labelledby="h-upload" onSubmit={(e) => e.preventDefault()}>
      <h2 id="h-upload">Upload an image</h2>
      <div class="inline-form">
        <label>
          Name
          <input value={name} onInput={(e) => setName(e.currentTarget.value)} placeholder="from the file" size={14} />
        </label>
        <label>
          Tag
          <input value={tag} onInput={(e) => setTag(e.currentTarget.value)} size={10} />
        </label>
        <label>
          ELF file
          <input type="file" data-testid="image-upload" onChange={onFile} disabled={busy} />
        </label>
      </div>
      {prog && (
        <p>
          <progress data-testid="upload-progress" max={prog.total || 1} value={prog.loaded} aria-label="Upload progress" /> {pct}%{' '}
          <span class="muted">{fmtBytes(prog.loaded)} of {fmtBytes(prog.total)}</span>
        </p>
      )}
      {msg && <p role="status">{msg}</p>}
    </form>
  );
}

const SAMPLE_NACL = `Iface eth0 {
  index: 0,
  address: 10.0.0.42,
  netmask: 255.255.255.0,
  gateway: 10.0.0.1
}
`;

function Build({ onDone }: { onDone: (id: string) => void }) {
  const { data: builders } = useLoad((s) => get<any[]>('/v1/builders', s), []);
  const { data: nacls } = useLoad((s) => get<any[]>('/v1/nacls' + qs({ limit: 1000 }), s), []);
  const { data: uplinks } = useLoad((s) => get<any[]>('/v1/uplinks' + qs({ limit: 1000 }), s), []);
  const [builderId, setBuilderId] = useState('');
  const [service, setService] = useState('');
  const [naclId, setNaclId] = useState('');
  const [naclText, setNaclText] = useState(SAMPLE_NACL);
  const [uplinkId, setUplinkId] = useState('');
  const [tag, setTag] = useState('');
  const [name, setName] = useState('');
  const [job, setJob] = useState<string | null>(null);
  const [result, setResult] = useState<string | null>(null);
  const builder = builders?.find((b) => b.id === builderId);
  useEffect(() => {
    if (!builderId && builders?.length) setBuilderId(builders[0].id);
  }, [builders]);
  useEffect(() => {
    if (builder && !builder.services.includes(service)) setService(builder.services[0] ?? '');
  }, [builder]);
  useEffect(() => {
    if (!uplinkId && uplinks?.length) setUplinkId((uplinks.find((u) => u.name === 'default') ?? uplinks[0]).id);
  }, [uplinks]);

  const submit = async (e: Event) => {
    e.preventDefault();
    setResult(null);
    try {
      const j = await post<Job>(`/v1/images/build/services/${enc(service)}/builders/${enc(builderId)}`, {
        naclId: naclId || null,
        nacl: naclId ? null : naclText,
        uplinkId: uplinkId || null,
        tag: tag.trim() || null,
        name: name.trim() || null,
      });
      setJob(j.id);
    } catch (err) {
      showError(err);
    }
  };
  const done = (j: Job) => {
    if (j.state === 'succeeded') {
      const id = j.result?.id ?? (typeof j.result === 'string' ? j.result : null);
      setResult(id ? `Built image ${short(id)}.` : 'Built.');
      if (id) onDone(id);
    } else setResult(`The build ${j.state}${j.error ? ': ' + j.error : ''}.`);
  };
  return (
    <form class="panel" aria-labelledby="h-build" onSubmit={submit}>
      <h2 id="h-build">Create new (build)</h2>
      <div class="inline-form">
        <label>
          Builder
          <select data-testid="build-builder" value={builderId} onChange={(e) => setBuilderId(e.currentTarget.value)}>
            {builders?.length === 0 && <option value="">none: prepare one</option>}
            {(builders ?? []).map((b) => (
              <option value={b.id}>{b.name} {b.version}</option>
            ))}
          </select>
        </label>
        <label>
          Service
          <select data-testid="build-service" value={service} onChange={(e) => setService(e.currentTarget.value)}>
            {(builder?.services ?? []).map((s: string) => (
              <option value={s}>{s}</option>
            ))}
          </select>
        </label>
        <label>
          NaCl
          <select data-testid="build-nacl" value={naclId} onChange={(e) => setNaclId(e.currentTarget.value)}>
            <option value="">written here</option>
            {(nacls ?? []).map((n) => (
              <option value={n.id}>{n.name}</option>
            ))}
          </select>
        </label>
        <label>
          Uplink
          <select data-testid="build-uplink" value={uplinkId} onChange={(e) => setUplinkId(e.currentTarget.value)}>
            <option value="">the default</option>
            {(uplinks ?? []).map((u) => (
              <option value={u.id}>{u.name} ({u.url})</option>
            ))}
          </select>
        </label>
        <label>
          Tag
          <input data-testid="build-tag" value={tag} onInput={(e) => setTag(e.currentTarget.value)} size={10} />
        </label>
        <label>
          Name
          <input value={name} onInput={(e) => setName(e.currentTarget.value)} size={12} placeholder="the service's" />
        </label>
        <button type="submit" class="primary" data-testid="build-submit" disabled={!builderId || !service}>Build</button>
      </div>
      {naclId ? (
        <p class="small"><a href={`#/nacls/${enc(naclId)}`}>Edit this NaCl</a></p>
      ) : (
        <label class="block">
          NaCl text
          <textarea data-testid="build-nacl-text" rows={6} value={naclText} onInput={(e) => setNaclText(e.currentTarget.value)} spellcheck={false} />
        </label>
      )}
      {result && <p role="status">{result}</p>}
      {job && <JobLog jobId={job} key={job} title="Build" onDone={done} />}
    </form>
  );
}

function Launch({ image, onClose }: { image: Image; onClose: () => void }) {
  const [hypervisor, setHypervisor] = useState('');
  const [memory, setMemory] = useState('');
  const [cpus, setCpus] = useState('');
  const [alias, setAlias] = useState('');
  const [restart, setRestart] = useState('no');
  const [publish, setPublish] = useState('');
  const [job, setJob] = useState<string | null>(null);
  const [instance, setInstance] = useState<string | null>(null);
  const submit = async (e: Event) => {
    e.preventDefault();
    try {
      const j = await post<Job>('/v1/instances', {
        imageId: image.id,
        hypervisor: hypervisor || null,
        memory: memory ? Number(memory) : null,
        cpus: cpus ? Number(cpus) : null,
        alias: alias.trim() || null,
        restart,
        publish: publish.split(/[\s,]+/).filter(Boolean),
      });
      setJob(j.id);
    } catch (err) {
      showError(err);
    }
  };
  return (
    <Modal title={`Launch ${image.name}${image.tag ? ' · ' + image.tag : ''}`} onClose={onClose} wide>
      <form class="form" onSubmit={submit}>
        <label for="l-hv">Hypervisor</label>
        <select id="l-hv" value={hypervisor} onChange={(e) => setHypervisor(e.currentTarget.value)}>
          <option value="">the host's</option>
          <option value="qemu">qemu</option>
          <option value="bhyve">bhyve</option>
        </select>
        <label for="l-mem">Memory (MiB)</label>
        <input id="l-mem" type="number" min={1} value={memory} onInput={(e) => setMemory(e.currentTarget.value)} placeholder="the server's default" />
        <label for="l-cpus">CPUs</label>
        <input id="l-cpus" type="number" min={1} value={cpus} onInput={(e) => setCpus(e.currentTarget.value)} placeholder="1" />
        <label for="l-alias">Alias</label>
        <input id="l-alias" value={alias} onInput={(e) => setAlias(e.currentTarget.value)} />
        <label for="l-restart">Restart policy</label>
        <select id="l-restart" value={restart} onChange={(e) => setRestart(e.currentTarget.value)}>
          <option value="no">no</option>
          <option value="on-failure">on-failure</option>
          <option value="always">always</option>
        </select>
        <label for="l-pub">Port forwards</label>
        <input id="l-pub" value={publish} onInput={(e) => setPublish(e.currentTarget.value)} placeholder="8080:80 5353:53/udp" />
        <div class="actions full">
          <button type="button" onClick={onClose}>Close</button>
          <button type="submit" class="primary" data-testid="launch-submit" disabled={!!job}>Launch</button>
        </div>
      </form>
      {instance && <p role="status">Launched: <a href={`#/instances/${enc(instance)}`} onClick={onClose}>the instance {short(instance)}</a></p>}
      {job && <JobLog jobId={job} key={job} title="Launch" onDone={(j) => j.state === 'succeeded' && setInstance(j.result?.id ?? null)} />}
    </Modal>
  );
}
