// The saved run (--save FILE): one self-describing, versioned JSON document.
// Readers (rbtrace diff, --baseline) need nothing but the file: the schema of
// the figures travels with them. Version 1 is described in man rbtrace(8),
// SAVED RUNS; a reader refuses a newer major version rather than guess.
import { readFileSync } from 'node:fs';
import { release } from 'node:os';
import { UsageError } from '../errors.js';
import { writeOutputFile, type OutputKind } from '../output/file.js';
import { packageVersion } from '../package.js';
import { finishFigures, type FigureSchema, type Figures } from './figures.js';
import { firstBadField } from './validate.js';

export const FORMAT = 'rbtrace-run';
export const FORMAT_VERSION = 1;

export interface SavedRun {
  format: typeof FORMAT;
  version: number;
  tool: string;
  rbtrace_version: string;
  /** uname -r of the machine that ran it. */
  kernel: string;
  /** The tool's options as given (JSON-able values only). */
  options: Record<string, unknown>;
  /** argv after --, or null. */
  command: string[] | null;
  /** -p PID, or null. */
  pid: number | null;
  started: string;
  duration_s: number;
  /** rbtrace's exit status before assertions (with -- CMD: CMD's). */
  exit_status: number;
  schema: FigureSchema;
  figures: Figures;
}

/** Options worth recording: what changes the figures, not where they go. */
const NOT_RECORDED = new Set(['save', 'assert', 'baseline', 'maxRegression', 'command', 'color', 'verbose', 'json', 'pid']);

export function recordedOptions(opts: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(opts)) {
    if (NOT_RECORDED.has(k) || v === undefined) continue;
    if (['string', 'number', 'boolean'].includes(typeof v) || (Array.isArray(v) && v.every((x) => typeof x !== 'object'))) out[k] = v;
  }
  return out;
}

export function makeDocument(run: Omit<SavedRun, 'format' | 'version' | 'rbtrace_version' | 'kernel'>): SavedRun {
  return { format: FORMAT, version: FORMAT_VERSION, rbtrace_version: packageVersion(), kernel: release(), ...run };
}

/** What --save writes, and so the only kind of file it replaces (our writer starts every one so). */
export const SAVED_RUN: OutputKind = {
  flag: '--save',
  what: 'an rbtrace saved run',
  recognise: (head) => /^\{\s*"format":\s*"rbtrace-run"/.test(head),
};

/** Write atomically (a temporary file renamed over it): a reader never sees half a run. */
export function writeDocument(path: string, doc: SavedRun): void {
  writeOutputFile(path, JSON.stringify(doc, null, 1) + '\n', SAVED_RUN);
}

/** Read a saved run; a one-line UsageError for anything that is not one. */
export function readDocument(path: string, flag: string): SavedRun {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new UsageError(`${flag}: cannot read ${path}: ${code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'a directory' : (err as Error).message}`);
  }
  let doc: Partial<SavedRun>;
  try {
    doc = JSON.parse(text);
  } catch {
    throw new UsageError(`${flag}: ${path} is not an rbtrace saved run (not JSON)`, 'make one with --save FILE');
  }
  if (!doc || typeof doc !== 'object' || doc.format !== FORMAT) {
    throw new UsageError(`${flag}: ${path} is not an rbtrace saved run (no "format": "${FORMAT}")`, 'make one with --save FILE; --json output is not a saved run');
  }
  if (typeof doc.version !== 'number' || doc.version > FORMAT_VERSION) {
    throw new UsageError(`${flag}: ${path} is a version ${doc.version} saved run; this rbtrace reads version ${FORMAT_VERSION}`, 'use the rbtrace that saved it');
  }
  if (typeof doc.tool !== 'string' || !doc.schema || typeof doc.figures !== 'object' || doc.figures === null) {
    throw new UsageError(`${flag}: ${path} is a damaged rbtrace saved run (no tool, schema or figures)`);
  }
  const wrong = firstBadField(doc as Record<string, unknown>);
  if (wrong) throw new UsageError(`${flag}: ${path} is a damaged rbtrace saved run: ${wrong}`, 'save the run again with --save FILE');
  doc.figures = finishFigures(doc.figures, doc.schema);
  return doc as SavedRun;
}
