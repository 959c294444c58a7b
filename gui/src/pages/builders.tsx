import { useState } from 'preact/hooks';
import { ApiError, del, enc, get, post, showError } from '../api';
import { useResync } from '../events';
import { Empty, fmtBytes, fmtTime, JobLog, short, useConfirm, useLoad, type Job } from '../ui';

interface Provider { id: string; name: string; kind: string; url: string; updated?: string | null }
interface Bob { id: string; name: string; version: string; vcsRef: string; buildDate: string; vendor: string; services: string[]; providerId: string; size: number; digest: string }

export function BuildersPage() {
  const providers = useLoad((s) => get<Provider[]>('/v1/bobproviders', s), []);
  const bobs = useLoad(
    async (s) => {
      const ps = await get<Provider[]>('/v1/bobproviders', s);
      const lists = await Promise.all(ps.map((p) => get<Bob[]>(`/v1/bobproviders/${enc(p.id)}/bobs`, s).catch(() => [] as Bob[])));
      return lists.flat();
    },
    [],
  );
  const builders = useLoad((s) => get<any[]>('/v1/builders', s), []);
  const [job, setJob] = useState<{ id: string; title: string } | null>(null);
  const [updating, setUpdating] = useState<string | null>(null);
  const [note, setNote] = useState<string | null>(null);
  const [dialog, ask] = useConfirm();
  const reloadAll = () => {
    providers.reload();
    bobs.reload();
    builders.reload();
  };
  useResync(reloadAll);

  const update = async (p: Provider) => {
    setUpdating(p.id);
    setNote(null);
    try {
      const list = await post<Bob[]>(`/v1/bobproviders/${enc(p.id)}/update`);
      setNote(`${p.name}: ${Array.isArray(list) ? list.length : 0} bob${Array.isArray(list) && list.length === 1 ? '' : 's'}.`);
      providers.reload();
      bobs.reload();
    } catch (e) {
      showError(e);
    } finally {
      setUpdating(null);
    }
  };
  const prepare = async (b: Bob) => {
    try {
      const j = await post<Job>(`/v1/bobproviders/${enc(b.providerId)}/prepare/bobs/${enc(b.id)}`);
      setJob({ id: j.id, title: `Prepare ${b.name} ${b.version}` });
    } catch (e) {
      showError(e);
    }
  };
  const remove = async (b: any) => {
    try {
      await del(`/v1/builders/${enc(b.id)}`);
      builders.reload();
    } catch (e) {
      if (e instanceof ApiError && e.status === 409)
        showError(new Error(`${e.message} (a build or a NaCl validation is using this builder: delete it when that job has ended)`));
      else showError(e);
    }
  };
  const isBuilder = (b: Bob) => (builders.data ?? []).some((x) => x.digest === b.digest || x.id === b.id);

  return (
    <section aria-labelledby="h-builders">
      <div class="page-head">
        <h1 id="h-builders">Builders</h1>
      </div>
      <h2>Bob providers</h2>
      <div class="table-wrap">
        <table class="grid">
          <thead>
            <tr>
              <th scope="col">Name</th>
              <th scope="col">Kind</th>
              <th scope="col">URL</th>
              <th scope="col">Updated</th>
              <th scope="col"><span class="sr-only">Actions</span></th>
            </tr>
          </thead>
          <tbody>
            {providers.data?.length === 0 && <Empty cols={5}>No providers: declare them in jetpack.conf.</Empty>}
            {(providers.data ?? []).map((p) => (
              <tr data-testid="provider-row" data-id={p.id}>
                <td>{p.name}</td>
                <td>{p.kind}</td>
                <td class="small">{p.url}</td>
                <td>{p.updated ? fmtTime(p.updated) : <span class="muted">never</span>}</td>
                <td class="row-actions">
                  <button type="button" data-testid="provider-update" onClick={() => update(p)} disabled={updating === p.id} aria-label={`Update ${p.name}`}>
                    {updating === p.id ? 'Updating…' : 'Update'}
                  </button>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      {note && <p role="status" class="muted">{note}</p>}
      <h2>Bobs</h2>
      <div class="table-wrap">
        <table class="grid">
          <thead>
            <tr>
              <th scope="col">Name</th>
              <th scope="col">Version</th>
              <th scope="col">Services</th>
              <th scope="col">Vendor</th>
              <th scope="col">VCS ref</th>
              <th scope="col">Build date</th>
              <th scope="col">Size</th>
              <th scope="col">Digest</th>
              <th scope="col"><span class="sr-only">Actions</span></th>
            </tr>
          </thead>
          <tbody>
            {bobs.data?.length === 0 && <Empty cols={9}>No bobs: update a provider.</Empty>}
            {(bobs.data ?? []).map((b) => (
              <tr data-testid="bob-row" data-id={b.id}>
                <td>{b.name}</td>
                <td>{b.version}</td>
                <td>{b.services.join(', ')}</td>
                <td>{b.vendor}</td>
                <td class="mono">{short(b.vcsRef)}</td>
                <td>{b.buildDate}</td>
                <td class="num">{fmtBytes(b.size)}</td>
                <td class="mono" title={b.digest}>{short(b.digest, 19)}</td>
                <td class="row-actions">
                  {isBuilder(b) && <span class="badge b-ok">prepared</span>}{' '}
                  <button type="button" data-testid="bob-prepare" onClick={() => prepare(b)} aria-label={`Prepare ${b.name} ${b.version}`}>Prepare</button>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      {job && <JobLog jobId={job.id} key={job.id} title={job.title} onDone={() => builders.reload()} />}
      <h2>Builders</h2>
      <div class="table-wrap">
        <table class="grid">
          <thead>
            <tr>
              <th scope="col">Name</th>
              <th scope="col">Version</th>
              <th scope="col">Services</th>
              <th scope="col">Id</th>
              <th scope="col">Provider</th>
              <th scope="col">VCS ref</th>
              <th scope="col">Created</th>
              <th scope="col"><span class="sr-only">Actions</span></th>
            </tr>
          </thead>
          <tbody>
            {builders.data?.length === 0 && <Empty cols={8}>No builders: prepare a bob.</Empty>}
            {(builders.data ?? []).map((b) => (
              <tr data-testid="builder-row" data-id={b.id}>
                <td>{b.name}</td>
                <td>{b.version}</td>
                <td>{(b.services ?? []).join(', ')}</td>
                <td class="mono">{short(b.id)}</td>
                <td>{b.providerId}</td>
                <td class="mono">{short(b.vcsRef)}</td>
                <td>{fmtTime(b.created)}</td>
                <td class="row-actions">
                  <button type="button" class="danger" data-testid="builder-delete" onClick={() => remove(b)} aria-label={`Delete ${b.name} ${b.version}`}>Delete</button>
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
