// rbtrace new NAME: a working starter tool, NAME.bpf.c + NAME.ts, from the
// commented templates in starter/ (shipped in the package).
import { closeSync, lstatSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { packageRoot } from '../core/package.js';
import { RbtraceError, UsageError } from '../core/errors.js';
import { directoryRefusal, inDir, openDirectory, writeInDirectory } from '../core/output/file.js';

/** A tool name: also a C identifier prefix and a file name. */
export function checkToolName(name: string): string {
  if (!/^[a-z][a-z0-9_]{0,31}$/.test(name)) {
    throw new UsageError(`'${name}' is not a tool name`, 'use 1 to 32 lower-case letters, digits and _, starting with a letter, e.g. rbtrace new mytool');
  }
  return name;
}

/**
 * Write the starter's files in `dir` by the rules of --save
 * (src/core/output-file.ts): the directory opened without following other
 * users' links, each file created under a temporary name and renamed into
 * place (a link planted at the name is replaced, never followed), and no
 * writing in another user's directory unless `othersDir`.
 */
export function writeStarter(name: string, dir = '.', force = false, othersDir = false): string[] {
  checkToolName(name);
  const files = [['tool.bpf.c.in', `${name}.bpf.c`], ['tool.ts.in', `${name}.ts`]] as const;
  const denied = directoryRefusal(dir, { othersDir });
  if (denied) throw new UsageError(`will not write in ${resolve(dir)}: ${denied}`, 'run it in a directory of your own, or pass --others-dir if you trust its owner');
  const fd = openDirectory(dir);
  try {
    for (const [, out] of files) {
      let exists = true;
      try { lstatSync(inDir(fd, out)); } catch { exists = false; }
      // lstat: a dangling link is a name taken too.
      if (!force && exists) throw new RbtraceError(`${out} exists already`, { hint: 'pick another name, or --force to overwrite it' });
    }
    const written: string[] = [];
    for (const [template, out] of files) {
      const text = readFileSync(join(packageRoot(), 'src/sdkcli/starter', template), 'utf8').replaceAll('__NAME__', name);
      writeInDirectory(fd, out, text);
      written.push(resolve(dir, out));
    }
    return written;
  } finally {
    closeSync(fd);
  }
}
