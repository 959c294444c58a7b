import { autocompletion, completionKeymap } from '@codemirror/autocomplete';
import { defaultKeymap, history, historyKeymap } from '@codemirror/commands';
import { bracketMatching, indentOnInput, syntaxHighlighting } from '@codemirror/language';
import { lintGutter, linter, type Diagnostic as CmDiagnostic } from '@codemirror/lint';
import { EditorState } from '@codemirror/state';
import { EditorView, drawSelection, highlightActiveLine, highlightActiveLineGutter, keymap, lineNumbers } from '@codemirror/view';
import { classHighlighter } from '@lezer/highlight';
import { useEffect, useRef, useState } from 'preact/hooks';
import { ApiError, api, del, enc, get, post, put, qs, request, showError, type Diagnostic } from '../api';
import { useResync } from '../events';
import { nacl } from '../nacl-lang';
import { Empty, fmtTime, Modal, short, useConfirm, useLoad } from '../ui';

interface Doc {
  id: string;
  name: string;
  content: string;
  created: string;
  updated: string;
  warnings?: Diagnostic[];
}

export function NaclsPage() {
  const [q, setQ] = useState('');
  const { data, reload } = useLoad((s) => get<Doc[]>('/v1/nacls' + qs({ q, limit: 1000 }), s), [q]);
  const [dialog, ask] = useConfirm();
  useResync(reload);
  const remove = async (d: Doc) => {
    if (!(await ask(`Delete the NaCl “${d.name}”?`))) return;
    try {
      await del(`/v1/nacls/${enc(d.id)}`);
      reload();
    } catch (e) {
      showError(e);
    }
  };
  return (
    <section aria-labelledby="h-nacls">
      <div class="page-head">
        <h1 id="h-nacls">NaCl</h1>
        <div class="actions">
          <a class="btn primary" href="#/nacls/new">New NaCl</a>
        </div>
      </div>
      <div class="toolbar">
        <label class="grow">
          <span class="sr-only">Search NaCls</span>
          <input type="search" placeholder="Search by name or content…" value={q} onInput={(e) => setQ(e.currentTarget.value)} />
        </label>
      </div>
      <NaclTable rows={data ?? []} onDelete={remove} />
      {dialog}
    </section>
  );
}

export function NaclTable({ rows, onDelete }: { rows: Doc[]; onDelete?: (d: Doc) => void }) {
  return (
    <div class="table-wrap">
      <table class="grid">
        <thead>
          <tr>
            <th scope="col">Name</th>
            <th scope="col">Id</th>
            <th scope="col">Updated</th>
            <th scope="col">Lines</th>
            {onDelete && <th scope="col"><span class="sr-only">Actions</span></th>}
          </tr>
        </thead>
        <tbody>
          {rows.length === 0 && <Empty cols={5}>No NaCls yet.</Empty>}
          {rows.map((d) => (
            <tr data-testid="nacl-row" data-id={d.id}>
              <td><a href={`#/nacls/${enc(d.id)}`}>{d.name}</a></td>
              <td class="mono">{short(d.id)}</td>
              <td>{fmtTime(d.updated)}</td>
              <td class="num">{d.content ? d.content.split('\n').length : ''}</td>
              {onDelete && (
                <td class="row-actions">
                  <button type="button" class="danger" onClick={() => onDelete(d)} aria-label={`Delete ${d.name}`}>Delete</button>
                </td>
              )}
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

/** Offsets in the document of a diagnostic's 1-based line and 0-based column, to the end of its token. */
function span(state: EditorState, d: Diagnostic): { from: number; to: number } {
  const n = Math.min(Math.max(1, d.line || 1), state.doc.lines);
  const line = state.doc.line(n);
  const from = line.from + Math.min(Math.max(0, d.column || 0), line.length);
  let to = from;
  const rest = state.doc.sliceString(from, line.to);
  const m = /^[A-Za-z0-9_.\-/:"]+/.exec(rest);
  to = from + (m ? m[0].length : Math.min(1, rest.length));
  return { from, to };
}

export function NaclEditorPage({ id }: { id: string }) {
  const isNew = id === 'new';
  const [doc, setDoc] = useState<Doc | null>(null);
  const [name, setName] = useState('');
  const [dirty, setDirty] = useState(false);
  const [diags, setDiags] = useState<Diagnostic[] | null>(null);
  const [builders, setBuilders] = useState<any[]>([]);
  const [builderId, setBuilderId] = useState('');
  const [builderVerdict, setBuilderVerdict] = useState<{ valid: boolean; errors: Diagnostic[]; message?: string } | null>(null);
  const [validating, setValidating] = useState(false);
  const [refused, setRefused] = useState<string | null>(null);
  const host = useRef<HTMLDivElement>(null);
  const view = useRef<EditorView | null>(null);
  const saved = useRef('');

  const text = () => view.current?.state.doc.toString() ?? '';
  const setText = (s: string) => {
    const v = view.current;
    if (v) v.dispatch({ changes: { from: 0, to: v.state.doc.length, insert: s } });
  };

  // The editor, once.
  useEffect(() => {
    const lint = linter(
      async (v) => {
        const content = v.state.doc.toString();
        let res: { errors: Diagnostic[]; warnings: Diagnostic[] };
        try {
          const ok = await api('/v1/nacls/validate', { method: 'POST', text: content });
          res = { errors: [], warnings: ok?.warnings ?? [] };
        } catch (e) {
          if (e instanceof ApiError && e.status === 422) res = { errors: e.body.errors ?? [], warnings: e.body.warnings ?? [] };
          else {
            showError(e);
            return [];
          }
        }
        if (v.state.doc.toString() !== content) return [];
        const all = [
          ...res.errors.map((d) => ({ ...d, severity: 'error' as const })),
          ...res.warnings.map((d) => ({ ...d, severity: 'warning' as const })),
        ].sort((a, b) => a.line - b.line || a.column - b.column);
        setDiags(all);
        return all.map((d): CmDiagnostic => ({ ...span(v.state, d), severity: d.severity, message: d.message, source: 'jetpack' }));
      },
      { delay: 300 },
    );
    const v = new EditorView({
      parent: host.current!,
      state: EditorState.create({
        doc: '',
        extensions: [
          lineNumbers(),
          highlightActiveLineGutter(),
          lintGutter(),
          history(),
          drawSelection(),
          indentOnInput(),
          bracketMatching(),
          autocompletion(),
          highlightActiveLine(),
          syntaxHighlighting(classHighlighter),
          nacl(),
          lint,
          EditorState.tabSize.of(2),
          EditorView.contentAttributes.of({ 'aria-label': 'NaCl source' }),
          keymap.of([
            { key: 'Mod-s', run: () => (document.querySelector<HTMLButtonElement>('[data-testid=nacl-save]')?.click(), true) },
            ...defaultKeymap,
            ...historyKeymap,
            ...completionKeymap,
          ]),
          EditorView.updateListener.of((u) => {
            if (u.docChanged) setDirty(u.state.doc.toString() !== saved.current);
          }),
        ],
      }),
    });
    view.current = v;
    return () => v.destroy();
  }, []);

  // The document.
  const load = async () => {
    if (isNew) {
      setDoc(null);
      setName('');
      saved.current = '';
      setText('');
      setDirty(false);
      return;
    }
    try {
      const d = await get<Doc>(`/v1/nacls/${enc(id)}`);
      setDoc(d);
      setName(d.name);
      saved.current = d.content;
      setText(d.content);
      setDirty(false);
    } catch (e) {
      showError(e);
    }
  };
  useEffect(() => {
    setRefused(null);
    setBuilderVerdict(null);
    load();
  }, [id]);
  useEffect(() => {
    get<any[]>('/v1/builders').then((b) => {
      setBuilders(b);
      if (b.length) setBuilderId(b[0].id);
    }, showError);
  }, []);

  const after = (d: Doc) => {
    saved.current = d.content;
    setDirty(text() !== d.content);
    setDoc(d);
    setName(d.name);
    setRefused(null);
  };
  const save = async (force = false) => {
    const content = text();
    try {
      if (isNew) {
        const d = await api<Doc>('/v1/nacls' + qs({ force: force || undefined }), { method: 'POST', body: { name: name.trim() || null, content } });
        after(d);
        location.hash = `#/nacls/${enc(d.id)}`;
      } else {
        const d = await api<Doc>(`/v1/nacls/${enc(id)}` + qs({ force: force || undefined }), { method: 'PUT', body: { name: name.trim() || null, content } });
        after(d);
      }
    } catch (e) {
      if (e instanceof ApiError && e.status === 422) setRefused(e.message);
      else showError(e);
    }
  };
  const saveAs = async (force = false) => {
    let newName = name.trim();
    if (!newName || (doc && newName === doc.name)) newName = (newName || 'nacl') + '-copy';
    try {
      const d = await api<Doc>('/v1/nacls' + qs({ force: force || undefined }), { method: 'POST', body: { name: newName, content: text() } });
      after(d);
      location.hash = `#/nacls/${enc(d.id)}`;
    } catch (e) {
      if (e instanceof ApiError && e.status === 422) setRefused(e.message);
      else showError(e);
    }
  };
  const revert = () => {
    setText(saved.current);
    if (doc) setName(doc.name);
    setDirty(false);
  };
  const validateWithBuilder = async () => {
    if (!builderId) return;
    setValidating(true);
    setBuilderVerdict(null);
    try {
      await request(`/v1/nacls/validate/builders/${enc(builderId)}`, { method: 'POST', text: text() });
      setBuilderVerdict({ valid: true, errors: [] });
    } catch (e) {
      if (e instanceof ApiError && e.status === 422) setBuilderVerdict({ valid: false, errors: e.body.errors ?? [], message: e.message });
      else showError(e);
    } finally {
      setValidating(false);
    }
  };
  const goto = (d: Diagnostic) => {
    const v = view.current;
    if (!v) return;
    const { from } = span(v.state, d);
    v.dispatch({ selection: { anchor: from }, scrollIntoView: true });
    v.focus();
  };
  const insert = (s: string) => {
    const v = view.current;
    if (!v) return;
    const r = v.state.selection.main;
    v.dispatch({ changes: { from: r.from, to: r.to, insert: s }, selection: { anchor: r.from + s.length }, scrollIntoView: true });
    v.focus();
  };
  const selectionOrAll = () => {
    const v = view.current;
    if (!v) return '';
    const r = v.state.selection.main;
    return r.empty ? v.state.doc.toString() : v.state.sliceDoc(r.from, r.to);
  };

  const errors = diags?.filter((d) => d.severity === 'error').length ?? 0;
  const warnings = diags?.filter((d) => d.severity === 'warning').length ?? 0;

  return (
    <section aria-labelledby="h-nacl">
      <div class="page-head">
        <h1 id="h-nacl">{isNew ? 'New NaCl' : `NaCl ${doc?.name ?? ''}`}</h1>
        {dirty && <span class="badge b-warning">unsaved</span>}
        <span class="muted"><a href="#/nacls">All NaCls</a></span>
      </div>
      <div class="toolbar">
        <label>
          Name{' '}
          <input data-testid="nacl-name" pattern="[A-Za-z0-9._\-]+" title="letters, digits, '-', '_' and '.'" value={name} onInput={(e) => { setName(e.currentTarget.value); setDirty(true); }} size={28} />
        </label>
        <button type="button" class="primary" data-testid="nacl-save" onClick={() => save()}>Save</button>
        <button type="button" data-testid="nacl-save-as" onClick={() => saveAs()}>Save as</button>
        <button type="button" data-testid="nacl-revert" onClick={revert} disabled={!dirty && !isNew}>Revert</button>
        <span class="spacer" />
        <label>
          Builder{' '}
          <select data-testid="nacl-validate-builder" value={builderId} onChange={(e) => setBuilderId(e.currentTarget.value)}>
            {builders.length === 0 && <option value="">no builders</option>}
            {builders.map((b) => (
              <option value={b.id}>{b.name} {b.version}</option>
            ))}
          </select>
        </label>
        <button type="button" data-testid="nacl-validate" onClick={validateWithBuilder} disabled={!builderId || validating}>
          {validating ? 'Validating…' : 'Validate with builder'}
        </button>
      </div>
      {refused && (
        <div class="warnbox" role="alert">
          {refused}{' '}
          <button type="button" onClick={() => save(true)}>Save anyway</button>
        </div>
      )}
      <div class="editor-layout">
        <div>
          <div class="nacl-editor" data-testid="nacl-editor" ref={host} />
          <h2 class="small">
            Problems{' '}
            <span class="muted" aria-live="polite">
              {diags === null ? 'checking…' : `${errors} error${errors === 1 ? '' : 's'}, ${warnings} warning${warnings === 1 ? '' : 's'}`}
            </span>
          </h2>
          <ul class="diags" data-testid="nacl-diagnostics" aria-label="Problems in this NaCl">
            {(diags ?? []).map((d) => (
              <li class={d.severity} onClick={() => goto(d)} title={d.severity}>
                line {d.line}:{d.column} {d.message}
              </li>
            ))}
          </ul>
          {builderVerdict && (
            <div class="panel" role="status">
              <h3>Builder's verdict</h3>
              {builderVerdict.valid ? (
                <p class="badge b-valid">valid</p>
              ) : (
                <>
                  <p class="err-text">{builderVerdict.message}</p>
                  <ul class="diags">
                    {builderVerdict.errors.map((d) => (
                      <li class="error" onClick={() => goto(d)}>line {d.line}:{d.column} {d.message}</li>
                    ))}
                  </ul>
                </>
              )}
            </div>
          )}
        </div>
        <Snippets insert={insert} selection={selectionOrAll} />
      </div>
    </section>
  );
}

function Snippets({ insert, selection }: { insert: (s: string) => void; selection: () => string }) {
  const { data, reload } = useLoad((s) => get<Doc[]>('/v1/snippets' + qs({ limit: 1000 }), s), []);
  const [name, setName] = useState('');
  const [editing, setEditing] = useState<Doc | null>(null);
  const [dialog, ask] = useConfirm();
  useResync(reload);
  const saveSnippet = async () => {
    const content = selection();
    if (!content.trim()) return;
    let n = name.trim();
    if (!n) {
      const taken = new Set((data ?? []).map((s) => s.name));
      let i = (data?.length ?? 0) + 1;
      while (taken.has(`snippet-${i}`)) i++;
      n = `snippet-${i}`;
    }
    try {
      await post('/v1/snippets', { name: n, content });
      setName('');
      reload();
    } catch (e) {
      showError(e);
    }
  };
  const remove = async (d: Doc) => {
    try {
      await del(`/v1/snippets/${enc(d.id)}`);
      reload();
    } catch (e) {
      showError(e);
    }
  };
  const saveEdit = async (e: Event) => {
    e.preventDefault();
    if (!editing) return;
    try {
      await put(`/v1/snippets/${enc(editing.id)}`, { name: editing.name, content: editing.content });
      setEditing(null);
      reload();
    } catch (err) {
      showError(err);
    }
  };
  return (
    <aside class="panel" aria-labelledby="h-snippets">
      <h2 id="h-snippets">Snippets</h2>
      <div class="inline-form">
        <label>
          Snippet name
          <input data-testid="snippet-name" pattern="[A-Za-z0-9._\-]+" title="letters, digits, '-', '_' and '.'" value={name} onInput={(e) => setName(e.currentTarget.value)} placeholder="new snippet" size={16} />
        </label>
        <button type="button" data-testid="snippet-save" onClick={saveSnippet} title="Save the selection (or the whole text) as a snippet">
          Save as snippet
        </button>
      </div>
      <table class="grid">
        <thead>
          <tr>
            <th scope="col">Name</th>
            <th scope="col"><span class="sr-only">Actions</span></th>
          </tr>
        </thead>
        <tbody>
          {data?.length === 0 && <Empty cols={2}>No snippets.</Empty>}
          {(data ?? []).map((s) => (
            <tr data-testid="snippet-row" data-id={s.id}>
              <td title={s.content}>{s.name}</td>
              <td class="row-actions">
                <button type="button" data-testid="snippet-insert" onClick={() => insert(s.content)} aria-label={`Insert ${s.name}`}>Insert</button>{' '}
                <button type="button" data-testid="snippet-edit" onClick={() => setEditing({ ...s })} aria-label={`Edit ${s.name}`}>Edit</button>{' '}
                <button type="button" class="danger" data-testid="snippet-delete" onClick={() => remove(s)} aria-label={`Delete ${s.name}`}>✕</button>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      {editing && (
        <EditSnippet doc={editing} setDoc={setEditing} onSubmit={saveEdit} />
      )}
      {dialog}
    </aside>
  );
}

function EditSnippet({ doc, setDoc, onSubmit }: { doc: Doc; setDoc: (d: Doc | null) => void; onSubmit: (e: Event) => void }) {
  return (
    <Modal title="Edit snippet" onClose={() => setDoc(null)} wide>
      <form onSubmit={onSubmit} class="form">
        <label for="snip-name">Name</label>
        <input id="snip-name" value={doc.name} onInput={(e) => setDoc({ ...doc, name: e.currentTarget.value })} />
        <label for="snip-content">Content</label>
        <textarea id="snip-content" rows={14} value={doc.content} onInput={(e) => setDoc({ ...doc, content: e.currentTarget.value })} />
        <div class="actions full">
          <button type="button" onClick={() => setDoc(null)}>Cancel</button>
          <button type="submit" class="primary">Save snippet</button>
        </div>
      </form>
    </Modal>
  );
}
