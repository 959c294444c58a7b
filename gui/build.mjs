// Builds gui/dist deterministically: the same sources and lockfile give the
// same bytes (content-hashed names, no timestamps, gzip with mtime 0).
import * as esbuild from 'esbuild';
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { brotliCompressSync, constants, gzipSync } from 'node:zlib';

const root = dirname(fileURLToPath(import.meta.url));
const dist = join(root, 'dist');
const assets = join(dist, 'assets');

// CodeMirror's style-mod puts its styles in a <style> element unless the
// root is a shadow root; the console's Content-Security-Policy (style-src
// 'self') refuses inline <style>, so make it use a constructed stylesheet
// adopted by the document (CSSOM, which the policy allows) in every browser
// that has document.adoptedStyleSheets.
const adoptedStyles = {
  name: 'style-mod-adopted',
  setup(build) {
    build.onLoad({ filter: /style-mod[\\/]src[\\/]style-mod\.js$/ }, (args) => {
      const src = readFileSync(args.path, 'utf8');
      const from = '!root.head && root.adoptedStyleSheets && win.CSSStyleSheet';
      if (!src.includes(from)) throw new Error('style-mod changed: review the adoptedStyleSheets patch in build.mjs');
      return { contents: src.replace(from, 'root.adoptedStyleSheets && win.CSSStyleSheet'), loader: 'js' };
    });
  },
};

const result = await esbuild.build({
  plugins: [adoptedStyles],
  entryPoints: { app: join(root, 'src/main.tsx') },
  bundle: true,
  minify: true,
  format: 'esm',
  target: ['es2020', 'chrome100', 'firefox100', 'safari15'],
  jsx: 'automatic',
  jsxImportSource: 'preact',
  legalComments: 'none',
  charset: 'utf8',
  write: false,
  outdir: 'out',
  logLevel: 'warning',
  define: { 'process.env.NODE_ENV': '"production"' },
});

const hash = (buf) => createHash('sha256').update(buf).digest('hex').slice(0, 12);
const files = new Map();
let js, css;
for (const f of result.outputFiles) {
  if (f.path.endsWith('.js')) js = f.contents;
  else if (f.path.endsWith('.css')) css = f.contents;
}
if (!js || !css) throw new Error('esbuild gave no js or no css');
const icon = readFileSync(join(root, 'src/favicon.svg'));
const names = {
  js: `assets/app-${hash(js)}.js`,
  css: `assets/app-${hash(css)}.css`,
  icon: `assets/favicon-${hash(icon)}.svg`,
};
files.set(names.js, js);
files.set(names.css, css);
files.set(names.icon, icon);
const html = readFileSync(join(root, 'src/index.html'), 'utf8')
  .replace("%JS%", "/" + names.js)
  .replace("%CSS%", "/" + names.css)
  .replace("%ICON%", "/" + names.icon);
files.set('index.html', Buffer.from(html));

rmSync(dist, { recursive: true, force: true });
mkdirSync(assets, { recursive: true });
const report = [];
for (const [name, data] of [...files].sort(([a], [b]) => a.localeCompare(b))) {
  const gz = gzipSync(data, { level: 9 });
  gz[9] = 3; // OS byte: always "Unix", whatever builds it (the mtime bytes are 0 already)
  const br = brotliCompressSync(data, {
    params: {
      [constants.BROTLI_PARAM_QUALITY]: 11,
      [constants.BROTLI_PARAM_MODE]: name.endsWith('.svg') || name.endsWith('.html') ? constants.BROTLI_MODE_TEXT : constants.BROTLI_MODE_GENERIC,
      [constants.BROTLI_PARAM_SIZE_HINT]: data.length,
    },
  });
  writeFileSync(join(dist, name), data);
  writeFileSync(join(dist, name + '.gz'), gz);
  writeFileSync(join(dist, name + '.br'), br);
  report.push(`${name.padEnd(36)} ${String(data.length).padStart(8)} raw ${String(gz.length).padStart(8)} gz ${String(br.length).padStart(8)} br`);
}
console.log(report.join('\n'));
