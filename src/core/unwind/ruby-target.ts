// Whether a target runs Ruby, for --unwind auto: a ruby's stacks are worth
// the dwarf unwinder (Ruby frames; Debian's libruby has no frame pointers),
// other programs keep the kernel's cheaper frame-pointer walk.
import { closeSync, openSync, readFileSync, readSync, readlinkSync } from 'node:fs';
import { basename } from 'node:path';
import { ElfFile } from '../elf/elf.js';
import { resolveCommand } from '../linux/process.js';

/** The interpreter's binary, or a library it runs from (libruby-3.1.so.3.1, libruby.so.3.3). */
const RUBY_FILE = /^(ruby[\d.]*|libruby[-.\d]*\.so[.\d]*)$/;

/** First bytes of a file, or undefined if it cannot be read. */
function head(path: string, n = 256): Buffer | undefined {
  let fd: number | undefined;
  try {
    fd = openSync(path, 'r');
    const buf = Buffer.alloc(n);
    return buf.subarray(0, readSync(fd, buf, 0, n, 0));
  } catch {
    return undefined;
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

/**
 * A program file that runs Ruby: an ELF named ruby or linking libruby, or a
 * `#!` script whose interpreter is one (`#!/usr/bin/env ruby` included).
 * A wrapper (bash, bundle's binstub through a shell) is not looked into.
 */
export function programRunsRuby(path: string, depth = 0): boolean {
  const bytes = head(path);
  if (!bytes || depth > 3) return false;
  if (bytes.subarray(0, 2).toString('latin1') === '#!') {
    const words = bytes.subarray(2).toString('latin1').split('\n')[0].trim().split(/\s+/);
    // env's own options (-S, -i, NAME=value) come before the program.
    const program = basename(words[0] ?? '') === 'env' ? words.slice(1).find((w) => !w.startsWith('-') && !w.includes('=')) : words[0];
    const resolved = program && resolveCommand(program);
    return resolved ? programRunsRuby(resolved, depth + 1) : false;
  }
  if (bytes.subarray(0, 4).toString('latin1') !== '\x7fELF') return false;
  if (RUBY_FILE.test(basename(path))) return true;
  try {
    return ElfFile.open(path).needed().some((lib) => RUBY_FILE.test(lib));
  } catch {
    return false;
  }
}

/** A running process that runs Ruby: its executable is one, or libruby is mapped. */
export function processRunsRuby(pid: number): boolean {
  try {
    if (RUBY_FILE.test(basename(readlinkSync(`/proc/${pid}/exe`).replace(/ \(deleted\)$/, '')))) return true;
    return readFileSync(`/proc/${pid}/maps`, 'utf8').split('\n').some((l) => RUBY_FILE.test(basename(l.slice(l.indexOf('/')))));
  } catch {
    return false;
  }
}
