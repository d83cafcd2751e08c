// rbtrace new NAME: a working starter tool, NAME.bpf.c + NAME.ts, from the
// commented templates in starter/ (shipped in the package).
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { packageRoot } from '../core/package.js';
import { RbtraceError, UsageError } from '../core/errors.js';

/** A tool name: also a C identifier prefix and a file name. */
export function checkToolName(name: string): string {
  if (!/^[a-z][a-z0-9_]{0,31}$/.test(name)) {
    throw new UsageError(`'${name}' is not a tool name`, 'use 1 to 32 lower-case letters, digits and _, starting with a letter, e.g. rbtrace new mytool');
  }
  return name;
}

export function writeStarter(name: string, dir = '.', force = false): string[] {
  checkToolName(name);
  const files = [['tool.bpf.c.in', `${name}.bpf.c`], ['tool.ts.in', `${name}.ts`]] as const;
  const written: string[] = [];
  for (const [, out] of files) {
    if (!force && existsSync(join(dir, out))) throw new RbtraceError(`${out} exists already`, { hint: 'pick another name, or --force to overwrite it' });
  }
  for (const [template, out] of files) {
    const text = readFileSync(join(packageRoot(), 'src/sdkcli/starter', template), 'utf8').replaceAll('__NAME__', name);
    writeFileSync(join(dir, out), text);
    written.push(resolve(dir, out));
  }
  return written;
}
