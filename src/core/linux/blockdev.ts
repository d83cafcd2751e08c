// Block devices by name and by number, from /sys: what biolatency's keys
// (the kernel's (major << 20) | minor, as MKDEV makes them) are called.
import { readFileSync, readlinkSync } from 'node:fs';
import { basename } from 'node:path';
import { UsageError } from '../errors.js';

/** The kernel's dev_t encoding inside the kernel (MKDEV): 20 bits of minor. */
export function kernelDev(major: number, minor: number): number {
  return ((major << 20) | minor) >>> 0;
}

/** The disk's name (vda, nvme0n1, loop3), or MAJ:MIN when /sys no longer knows it. */
export function blockDevName(dev: number): string {
  const id = `${dev >>> 20}:${dev & 0xfffff}`;
  try {
    return basename(readlinkSync(`/sys/dev/block/${id}`));
  } catch {
    return id;
  }
}

/** --disk NAME (or /dev/NAME): the whole disk's number, or a usage error. */
export function blockDevByName(text: string, flag = '--disk'): number {
  const name = text.replace(/^\/dev\//, '');
  if (!/^[\w.-]+$/.test(name)) throw new UsageError(`${flag}: '${text}' is not a disk name`, 'give a name as /sys/block lists it, e.g. vda or nvme0n1');
  let majMin: string;
  try {
    majMin = readFileSync(`/sys/block/${name}/dev`, 'utf8').trim();
  } catch {
    throw new UsageError(`${flag}: no disk '${name}' in /sys/block`, 'give a whole disk as /sys/block lists it (not a partition), e.g. vda');
  }
  const [major, minor] = majMin.split(':').map(Number);
  return kernelDev(major, minor);
}
