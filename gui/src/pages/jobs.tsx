import { useState } from 'preact/hooks';
import { del, enc, get, qs, showError } from '../api';
import { useEvent, useResync } from '../events';
import { Badge, Empty, fmtTime, JobLog, jobEnded, short, useLoad, useThrottled, type Job } from '../ui';

export function JobsPage() {
  const [state, setState] = useState('');
  const [kind, setKind] = useState('');
  const [open, setOpen] = useState<string | null>(null);
  const { data, reload, setData } = useLoad((s) => get<Job[]>('/v1/jobs' + qs({ state, kind, limit: 200 }), s), [state, kind]);
  const later = useThrottled(reload, 1000);
  useResync(reload);
  useEvent('job', (d) => {
    const rows = data ?? [];
    const i = rows.findIndex((j) => j.id === d.id);
    if (i >= 0) {
      const n = rows.slice();
      n[i] = { ...n[i], state: d.state, progress: d.progress };
      setData(n);
      if (jobEnded(d.state) || state) later();
    } else later();
  });
  return (
    <section aria-labelledby="h-jobs">
      <div class="page-head">
        <h1 id="h-jobs">Jobs</h1>
      </div>
      <div class="toolbar">
        <label>
          State{' '}
          <select value={state} onChange={(e) => setState(e.currentTarget.value)}>
            <option value="">any</option>
            {['queued', 'running', 'succeeded', 'failed', 'cancelled'].map((s) => <option value={s}>{s}</option>)}
          </select>
        </label>
        <label>
          Kind{' '}
          <select value={kind} onChange={(e) => setKind(e.currentTarget.value)}>
            <option value="">any</option>
            {['build', 'deploy', 'upgrade', 'prepare', 'import', 'launch', 'download'].map((s) => <option value={s}>{s}</option>)}
          </select>
        </label>
      </div>
      <JobTable rows={data ?? []} onChange={reload} onLog={setOpen} />
      {open && <JobLog jobId={open} key={open} title="Log of job" />}
    </section>
  );
}

async function cancel(j: Job, then: () => void) {
  try {
    await del(`/v1/jobs/${enc(j.id)}`);
    then();
  } catch (e) {
    showError(e);
  }
}

function JobTable({ rows, onChange, onLog }: { rows: Job[]; onChange: () => void; onLog: (id: string) => void }) {
  return (
    <div class="table-wrap">
      <table class="grid">
        <thead>
          <tr>
            <th scope="col">Job</th>
            <th scope="col">Kind</th>
            <th scope="col">Target</th>
            <th scope="col">State</th>
            <th scope="col">Progress</th>
            <th scope="col">Created</th>
            <th scope="col">Finished</th>
            <th scope="col"><span class="sr-only">Actions</span></th>
          </tr>
        </thead>
        <tbody>
          {rows.length === 0 && <Empty cols={8}>No jobs.</Empty>}
          {rows.map((j) => (
            <tr data-testid="job-row" data-id={j.id}>
              <td><a href={`#/jobs/${enc(j.id)}`} class="mono">{short(j.id)}</a></td>
              <td>{j.kind}</td>
              <td class="small">{j.target ?? ''}</td>
              <td><Badge kind={j.state}>{j.state}</Badge>{j.error && <div class="sub err-text">{j.error}</div>}</td>
              <td><progress max={100} value={Math.round((j.progress ?? 0) * 100)} aria-label={`Progress of ${j.id}`} /> {Math.round((j.progress ?? 0) * 100)}%</td>
              <td>{fmtTime(j.created)}</td>
              <td>{fmtTime(j.finished)}</td>
              <td class="row-actions">
                <button type="button" data-testid="job-log-open" onClick={() => onLog(j.id)} aria-label={`Log of ${j.id}`}>Log</button>{' '}
                {!jobEnded(j.state) && (
                  <button type="button" class="danger" data-testid="job-cancel" onClick={() => cancel(j, onChange)} aria-label={`Cancel ${j.id}`}>Cancel</button>
                )}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

export function JobPage({ id }: { id: string }) {
  const { data: job, reload } = useLoad((s) => get<Job>(`/v1/jobs/${enc(id)}`, s), [id]);
  useResync(reload);
  useEvent('job', (d) => d.id === id && jobEnded(d.state) && reload());
  return (
    <section aria-labelledby="h-job">
      <div class="page-head">
        <h1 id="h-job">Job <code>{short(id, 24)}</code></h1>
        {job && <Badge kind={job.state}>{job.state}</Badge>}
        <div class="actions">
          <a href="#/jobs">All jobs</a>
          {job && !jobEnded(job.state) && (
            <button type="button" class="danger" data-testid="job-cancel" onClick={() => cancel(job, reload)}>Cancel</button>
          )}
        </div>
      </div>
      {job && (
        <div class="panel">
          <dl class="kv">
            <dt>Kind</dt><dd>{job.kind}</dd>
            <dt>Target</dt><dd>{job.target ?? ''}</dd>
            <dt>Created</dt><dd>{fmtTime(job.created)}</dd>
            <dt>Started</dt><dd>{fmtTime(job.started)}</dd>
            <dt>Finished</dt><dd>{fmtTime(job.finished)}</dd>
            {job.error && (<><dt>Error</dt><dd class="err-text">{job.error}</dd></>)}
            {job.result != null && (<><dt>Result</dt><dd><code class="small">{JSON.stringify(job.result)}</code></dd></>)}
          </dl>
        </div>
      )}
      <JobLog jobId={id} key={id} title="Log of job" onDone={reload} />
    </section>
  );
}
