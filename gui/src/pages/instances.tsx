import { useEffect, useMemo, useState } from 'preact/hooks';
import { del, enc, get, list, qs, showError } from '../api';
import { counts as countsSignal, useEvent, useResync } from '../events';
import { useSignal } from '../state';
import { ago, Badge, Empty, short, useConfirm, useLoad, useThrottled } from '../ui';

export interface Instance {
  id: string;
  status: string;
  panicked: boolean;
  alias?: string | null;
  description?: string | null;
  addresses: string[];
  devices: string[];
  firstSeen: string;
  lastSeen: string;
  imageId?: string | null;
  tag?: string | null;
  version?: string | null;
  service?: string | null;
  uplinkId?: string | null;
  uplinkUrl?: string | null;
  naclId?: string | null;
  remote?: string | null;
  arch?: string | null;
  launched?: { podId: string; hypervisor: string; memory: number; cpus: number; restart: string; publish: string[]; image: string } | null;
}

const PAGE = 20;
const COUNTS = ['connected', 'connecting', 'disconnected', 'unknown', 'panicked', 'total'] as const;
// column key -> the API's sort field
const SORTS: [string, string, string][] = [
  ['alias', 'alias', 'Alias'],
  ['status', 'status', 'Status'],
  ['id', 'id', 'Id'],
  ['tag', 'tag', 'Image tag'],
  ['launched', 'firstSeen', 'Launched'],
  ['lastSeen', 'lastSeen', 'Last seen'],
];

export function PanicIcon() {
  return (
    <span class="panic" role="img" aria-label="panicked" title="This instance reported a panic">
      ⚠
    </span>
  );
}

function Counts() {
  const live = useSignal(countsSignal);
  const [initial, setInitial] = useState<Record<string, number> | null>(null);
  useEffect(() => {
    get('/v1/instances/summary').then(setInitial, () => {});
  }, []);
  const c = live ?? initial ?? {};
  return (
    <div class="counts" aria-label="Instances per status">
      {COUNTS.map((k) => (
        <div class={`count c-${k}`}>
          <span class="count-n" data-testid={`count-${k}`}>{c[k] ?? 0}</span>
          <span class="count-l">{k}</span>
        </div>
      ))}
    </div>
  );
}

export function InstancesPage() {
  const [q, setQ] = useState('');
  const [dq, setDq] = useState('');
  const [status, setStatus] = useState('');
  const [panicked, setPanicked] = useState('');
  const [sort, setSort] = useState<{ key: string; desc: boolean }>({ key: 'id', desc: false });
  const [page, setPage] = useState(0);
  const [selected, setSelected] = useState<Set<string>>(new Set());
  const [dialog, ask] = useConfirm();

  useEffect(() => {
    const t = setTimeout(() => setDq(q), 250);
    return () => clearTimeout(t);
  }, [q]);
  useEffect(() => setPage(0), [dq, status, panicked, sort.key, sort.desc]);

  const apiSort = (sort.desc ? '-' : '') + (SORTS.find(([k]) => k === sort.key)?.[1] ?? sort.key);
  const { data, loading, reload, setData } = useLoad(
    (signal) =>
      list<Instance>('/v1/instances' + qs({ q: dq, status, panicked, sort: apiSort, limit: PAGE, offset: page * PAGE }), signal),
    [dq, status, panicked, apiSort, page],
  );
  const rows = data?.items ?? [];
  const total = data?.total ?? 0;
  const later = useThrottled(reload, 1000);
  useResync(reload);

  useEvent('instance', (d) => {
    const i = rows.findIndex((r) => r.id === d.id);
    if (i >= 0 && data) {
      const items = rows.slice();
      items[i] = { ...items[i], status: d.status ?? items[i].status, panicked: d.panicked ?? items[i].panicked };
      setData({ ...data, items });
    }
    // It may enter or leave this page (a new one, a filter or an order by status), and aliases may change.
    later();
  });
  useEvent('instance-removed', () => later());

  const pageIds = rows.map((r) => r.id);
  const allOn = pageIds.length > 0 && pageIds.every((id) => selected.has(id));
  const toggle = (id: string) => {
    const s = new Set(selected);
    s.has(id) ? s.delete(id) : s.add(id);
    setSelected(s);
  };
  const toggleAll = () => {
    const s = new Set(selected);
    if (allOn) pageIds.forEach((id) => s.delete(id));
    else pageIds.forEach((id) => s.add(id));
    setSelected(s);
  };
  const deleteSelected = async () => {
    const ids = [...selected];
    if (!ids.length) return;
    if (!(await ask(`Forget ${ids.length} instance${ids.length > 1 ? 's' : ''} and what is stored of ${ids.length > 1 ? 'them' : 'it'}?`))) return;
    try {
      await del('/v1/instances' + qs({ ids: ids.join(',') }));
      setSelected(new Set());
      reload();
    } catch (e) {
      showError(e);
    }
  };
  const clickSort = (key: string) => setSort((s) => (s.key === key ? { key, desc: !s.desc } : { key, desc: false }));
  const from = total ? page * PAGE + 1 : 0;
  const to = Math.min(total, page * PAGE + rows.length);
  const pages = Math.max(1, Math.ceil(total / PAGE));

  const ariaSort = (key: string) => (sort.key === key ? (sort.desc ? 'descending' : 'ascending') : undefined);
  const selCount = useMemo(() => selected.size, [selected]);

  return (
    <section aria-labelledby="h-instances">
      <div class="page-head">
        <h1 id="h-instances">Instances</h1>
        <Counts />
      </div>
      <div class="toolbar">
        <label class="grow">
          <span class="sr-only">Search instances</span>
          <input type="search" data-testid="instances-search" placeholder="Search id, alias, description, addresses, image, devices…" value={q} onInput={(e) => setQ(e.currentTarget.value)} />
        </label>
        <label>
          Status{' '}
          <select data-testid="instances-status" value={status} onChange={(e) => setStatus(e.currentTarget.value)}>
            <option value="">any</option>
            {['connected', 'connecting', 'disconnected', 'unknown', 'launching', 'stopped'].map((s) => (
              <option value={s}>{s}</option>
            ))}
          </select>
        </label>
        <label>
          Panicked{' '}
          <select data-testid="instances-panicked" value={panicked} onChange={(e) => setPanicked(e.currentTarget.value)}>
            <option value="">any</option>
            <option value="true">yes</option>
            <option value="false">no</option>
          </select>
        </label>
        <button type="button" class="danger" data-testid="delete-selected" disabled={!selCount} onClick={deleteSelected}>
          Delete{selCount ? ` (${selCount})` : ''}
        </button>
      </div>
      <div class="table-wrap" aria-busy={loading}>
        <table class="grid">
          <thead>
            <tr>
              <th scope="col" class="chk">
                <input type="checkbox" data-testid="select-all" aria-label="Select all on this page" checked={allOn} onChange={toggleAll} />
              </th>
              {SORTS.map(([key, , label]) => (
                <th scope="col" aria-sort={ariaSort(key)}>
                  <button type="button" class="sort" data-testid={`sort-${key}`} onClick={() => clickSort(key)}>
                    {label}
                    <span class="arrow" aria-hidden="true">{sort.key === key ? (sort.desc ? '▼' : '▲') : ''}</span>
                  </button>
                </th>
              ))}
              <th scope="col">Version</th>
              <th scope="col">Addresses</th>
            </tr>
          </thead>
          <tbody>
            {rows.length === 0 && !loading && <Empty cols={9}>No instances{dq || status || panicked ? ' match' : ' have docked yet'}.</Empty>}
            {rows.map((r) => (
              <tr data-testid="instance-row" data-id={r.id} class={selected.has(r.id) ? 'sel' : ''}>
                <td class="chk">
                  <input type="checkbox" data-testid="select-row" aria-label={`Select ${r.alias || r.id}`} checked={selected.has(r.id)} onChange={() => toggle(r.id)} />
                </td>
                <td>
                  {r.panicked && <PanicIcon />}
                  <a href={`#/instances/${enc(r.id)}`}>{r.alias || <span class="muted">(no alias)</span>}</a>
                  {r.description && <div class="sub">{r.description}</div>}
                </td>
                <td>
                  <Badge kind={r.status}>{r.status}</Badge>
                </td>
                <td>
                  <a href={`#/instances/${enc(r.id)}`} class="mono">{short(r.id, 32)}</a>
                </td>
                <td>{r.tag ?? ''}</td>
                <td title={r.firstSeen}>{r.launched ? <Badge kind="info">{r.launched.hypervisor}</Badge> : null} {ago(r.firstSeen)}</td>
                <td title={r.lastSeen}>{ago(r.lastSeen)}</td>
                <td class="small">{r.version ?? ''}</td>
                <td class="mono small">{r.addresses.join(', ')}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      <div class="pager">
        <button type="button" data-testid="page-prev" disabled={page === 0} onClick={() => setPage(page - 1)}>
          ‹ Previous
        </button>
        <span data-testid="page-info" aria-live="polite">
          {from}–{to} of {total}
        </span>
        <button type="button" data-testid="page-next" disabled={page + 1 >= pages} onClick={() => setPage(page + 1)}>
          Next ›
        </button>
      </div>
      {dialog}
    </section>
  );
}
