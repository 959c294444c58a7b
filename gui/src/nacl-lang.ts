// A small NaCl language mode (spec/nacl.md): a StreamLanguage tokenizer with
// keyword completion. Token names map to @lezer/highlight tags and are styled
// through classHighlighter's tok-* classes (style.css), so both themes work.
import { completeFromList, type Completion } from '@codemirror/autocomplete';
import { LanguageSupport, StreamLanguage, type StringStream } from '@codemirror/language';

const TYPES = ['Iface', 'Filter', 'Nat', 'Gateway', 'Load_balancer', 'Conntrack', 'Syslog', 'Timer', 'Vlan', 'Rewrite', 'IP', 'TCP', 'UDP', 'ICMP'];
const TYPES_LC = new Set(TYPES.map((t) => t.toLowerCase()));
const CONTROL = new Set(['if', 'else', 'in', 'and', 'or', 'not']);
const ATOMS = new Set(['true', 'false', 'dhcp', 'dhcp-with-fallback', 'static', 'round_robin', 'tcp', 'udp', 'icmp', 'ip', 'ct',
  'established', 'new', 'related', 'invalid', 'ssh', 'dns', 'http', 'https',
  'echo-reply', 'destination-unreachable', 'redirect', 'echo-request', 'time-exceeded', 'parameter-problem', 'timestamp-request', 'timestamp-reply']);
const ACTIONS = new Set(['accept', 'drop', 'log', 'syslog', 'snat', 'dnat', 'masquerade', 'reject']);
const MEMBERS = ['index', 'address', 'netmask', 'gateway', 'dns', 'config', 'masquerade', 'vlan', 'buffer_limit', 'send_queue_limit',
  'prerouting', 'input', 'output', 'postrouting', 'send_time_exceeded', 'forward', 'host', 'net', 'nexthop', 'iface', 'cost',
  'limit', 'reserve', 'stateful_tcp', 'timeout', 'layer', 'clients', 'servers', 'port', 'wait_queue_limit', 'session_limit',
  'algorithm', 'pool', 'interval', 'data', 'source', 'destination', 'protocol', 'dport', 'sport', 'state', 'flags'];

interface State {
  inComment: boolean;
  depth: number;
}

function token(stream: StringStream, state: State): string | null {
  if (state.inComment) {
    if (stream.skipTo('*/')) {
      stream.match('*/');
      state.inComment = false;
    } else stream.skipToEnd();
    return 'blockComment';
  }
  if (stream.eatSpace()) return null;
  if (stream.match('/*')) {
    state.inComment = true;
    return token(stream, state) && 'blockComment';
  }
  if (stream.match('//') || stream.peek() === '#') {
    stream.skipToEnd();
    return 'lineComment';
  }
  if (stream.peek() === '"') {
    stream.next();
    let c: string | void;
    while ((c = stream.next()) != null) {
      if (c === '\\') stream.next();
      else if (c === '"') break;
    }
    return 'string';
  }
  // IPv4 addresses and CIDRs (and ranges of them)
  if (stream.match(/^\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}(\/\d{1,2})?/)) return 'atom';
  // MAC addresses
  if (stream.match(/^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}/)) return 'atom';
  if (stream.match(/^\d+(\.\d+)?/)) return 'number';
  if (stream.match('::')) return 'punctuation';
  if (stream.match(/^(==|!=|>=|<=|&&|\|\||[<>!])/)) return 'operator';
  const br = stream.match(/^[{}\[\]()]/) as RegExpMatchArray | null;
  if (br) {
    if ('{[('.includes(br[0])) state.depth++;
    else state.depth = Math.max(0, state.depth - 1);
    return 'bracket';
  }
  if (stream.match(/^[:,.]/)) return 'punctuation';
  if (stream.match(/^-/)) return 'operator';
  const word = stream.match(/^[A-Za-z_][A-Za-z0-9_-]*/) as RegExpMatchArray | null;
  if (word) {
    const w = word[0];
    const lc = w.toLowerCase();
    if (CONTROL.has(lc)) return 'keyword';
    if (ACTIONS.has(lc) && stream.match(/^\s*(\(|$|\s)/, false)) return 'keyword';
    if (TYPES_LC.has(lc) && /^[A-Z]/.test(w)) return 'typeName';
    if (ATOMS.has(lc)) return 'atom';
    if (stream.match(/^\s*:(?!:)/, false)) return 'propertyName';
    return 'variableName';
  }
  stream.next();
  return null;
}

export const naclLanguage = StreamLanguage.define<State>({
  name: 'nacl',
  startState: () => ({ inComment: false, depth: 0 }),
  copyState: (s) => ({ ...s }),
  token,
  languageData: {
    commentTokens: { line: '//', block: { open: '/*', close: '*/' } },
    closeBrackets: { brackets: ['(', '[', '{', '"'] },
    indentOnInput: /^\s*[}\]]$/,
  },
  indent(state, textAfter, cx) {
    const closing = /^\s*[}\])]/.test(textAfter) ? 1 : 0;
    return Math.max(0, state.depth - closing) * cx.unit;
  },
});

const completions: Completion[] = [
  ...TYPES.map((label) => ({ label, type: 'type' })),
  ...[...CONTROL, 'true', 'false'].map((label) => ({ label, type: 'keyword' })),
  ...[...ACTIONS].map((label) => ({ label, type: 'function' })),
  ...MEMBERS.map((label) => ({ label, type: 'property' })),
  ...[...ATOMS].filter((a) => a !== 'true' && a !== 'false').map((label) => ({ label, type: 'constant' })),
];

export function nacl(): LanguageSupport {
  return new LanguageSupport(naclLanguage, [naclLanguage.data.of({ autocomplete: completeFromList(completions) })]);
}
