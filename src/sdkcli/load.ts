// rbtrace run FILE: a user's tool file (TypeScript or JavaScript) turned into
// a ToolDefinition. esbuild bundles the file with its local imports (the
// NAME.skel.ts bindings, helpers, npm dependencies) in memory; the 'rbtrace'
// import is pointed at the SDK this very CLI runs from, so the tool shares its
// classes (an RbtraceError it throws is one the CLI knows) whatever copy of
// rbtrace the tool's own node_modules may hold. Node 20 cannot strip types
// by itself, hence esbuild.
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { packageRoot } from '../core/package.js';
import { RbtraceError, UsageError } from '../core/errors.js';
import type { ToolDefinition } from '../core/tool.js';

/** The SDK module of the running CLI: the bundle's sdk.js beside this chunk, or tsc's dist/src/sdk.js. */
export function runningSdk(): string {
  const here = fileURLToPath(import.meta.url);
  if (/[/\\]dist[/\\]bundle[/\\]/.test(here)) return join(dirname(here), 'sdk.js');
  return join(packageRoot(), 'dist/src/sdk.js');
}

/** Bundle `file` to ESM text, with import.meta.url of each source file kept as that file's own URL. */
export async function bundleToolFile(file: string): Promise<string> {
  const { build } = await import('esbuild');
  const sdk = pathToFileURL(runningSdk()).href;
  const result = await build({
    entryPoints: [file],
    bundle: true,
    write: false,
    format: 'esm',
    platform: 'node',
    target: 'node20',
    logLevel: 'silent',
    // A user's CommonJS dependencies call require() at run time.
    banner: { js: `import { createRequire as __rbtraceRequire } from 'node:module'; const require = __rbtraceRequire(${JSON.stringify(pathToFileURL(file).href)});` },
    plugins: [{
      name: 'rbtrace-sdk',
      setup(b) {
        b.onResolve({ filter: /^rbtrace$/ }, () => ({ path: sdk, external: true }));
        // The bundle is imported from a data: URL, so import.meta.url would
        // name no file: each source gets its own URL written in (NAME.skel.ts
        // finds NAME.bpf.o next to itself with it).
        b.onLoad({ filter: /\.[cm]?[jt]s$/ }, (args) => {
          const text = readFileSync(args.path, 'utf8');
          const loader = /\.[cm]?ts$/.test(args.path) ? 'ts' : 'js';
          if (!text.includes('import.meta.url')) return { contents: text, loader };
          return { contents: text.replaceAll('import.meta.url', JSON.stringify(pathToFileURL(args.path).href)), loader };
        });
      },
    }],
  });
  return result.outputFiles[0].text;
}

/** Load the tool a file default-exports. */
export async function loadToolFile(path: string): Promise<ToolDefinition<any>> {
  const file = resolve(path);
  if (!existsSync(file)) throw new UsageError(`${path}: no such file`, 'rbtrace run wants a tool file, e.g. rbtrace run demo.ts (rbtrace new demo writes one)');
  let code: string;
  try {
    code = await bundleToolFile(file);
  } catch (err) {
    const errors = (err as { errors?: { text: string; location?: { file: string; line: number } }[] }).errors;
    const first = errors?.[0];
    const where = first?.location ? `${first.location.file}:${first.location.line}: ` : '';
    throw new RbtraceError(`cannot compile ${path}: ${where}${first?.text ?? (err as Error).message}`, { hint: 'fix the file, or check it with tsc --noEmit' });
  }
  const mod = await import(`data:text/javascript;base64,${Buffer.from(code).toString('base64')}`);
  const def = mod.default as ToolDefinition<any> | undefined;
  if (!def || typeof def !== 'object' || typeof def.run !== 'function' || typeof def.name !== 'string') {
    throw new RbtraceError(`${path} does not default-export a tool`, { hint: "end it with export default defineTool({ name, summary, run(ctx, opts) {...} })" });
  }
  return def;
}
