#!/usr/bin/env node
// Bundle the CLI with esbuild into dist/bundle/: one entry file plus one chunk
// per tool (the registry's dynamic imports), so that `rbtrace execsnoop`
// parses one small set of files instead of resolving ~40 modules. Saves
// ~40 ms and ~10 MB of RSS at start-up (bench/startup.mjs). koffi stays
// external: it is a native module, loaded from node_modules (so is esbuild,
// which `rbtrace run` uses to transpile a user's tool).
import { build } from 'esbuild';
import { rmSync } from 'node:fs';

rmSync('dist/bundle', { recursive: true, force: true });
await build({
  // sdk.js: the package's public entry (`import ... from 'rbtrace'`); it
  // shares its chunks with cli.js, so a tool run by `rbtrace run` and the CLI
  // use one copy of each module.
  entryPoints: ['src/cli.ts', 'src/sdk.ts'],
  outdir: 'dist/bundle',
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  external: ['koffi', 'esbuild'],
  logLevel: 'warning',
  // CommonJS dependencies (commander, cli-table3) call require() at run time.
  banner: { js: "import { createRequire as __rbtraceRequire } from 'node:module'; const require = __rbtraceRequire(import.meta.url);" },
});
