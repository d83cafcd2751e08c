// One parser per kind of command-line value (seconds, whole numbers, pids,
// uids, errnos, ports), each refusing what is out of its range with the range
// in the message. Every numeric option of every tool goes through one of
// these, as a commander argParser, so a bad value is a usage error (exit 2)
// before anything is loaded. The accepted forms are plain decimals: no sign,
// exponent, hex or "Infinity", which Number() would all take.
import { execFileSync } from 'node:child_process';
import { UsageError } from './errors.js';
import { errnoNumber } from './linux/names.js';

export type Parser<T> = (text: string) => T;

/**
 * The longest timer Node keeps: setTimeout/setInterval take at most 2^31-1
 * ms; beyond that Node warns (TimeoutOverflowWarning) and fires after 1 ms.
 * Whole seconds, so that the limit reads well in messages.
 */
export const MAX_TIMER_SECONDS = Math.floor((2 ** 31 - 1) / 1000); // 2147483 s, 24.8 days

/** Linux's PID_MAX_LIMIT (include/linux/threads.h): no pid or tid is larger. */
export const PID_MAX_LIMIT = 4194304;

/** (uid_t)-1 means "no uid" to the kernel (setresuid's "unchanged"), never a user. */
export const MAX_UID = 0xfffffffe;

/** The kernel's MAX_ERRNO: return values from -4095 to -1 are errnos. */
export const MAX_ERRNO = 4095;

const DECIMAL = /^(\d+(\.\d*)?|\.\d+)$/;
const WHOLE = /^\d+$/;

function fail(flag: string, wants: string, text: string, example?: string): never {
  throw new UsageError(`${flag} wants ${wants}, got '${text}'`, example ? `e.g. ${flag} ${example}` : undefined);
}

/** Seconds, decimals allowed, from min to max (inclusive). */
export function secondsParser(flag: string, range: { min: number; max?: number; example?: string }): Parser<number> {
  const max = range.max ?? MAX_TIMER_SECONDS;
  const wants = `a number of seconds from ${range.min} to ${max}`;
  return (text) => {
    const t = text.trim();
    const v = Number(t);
    if (!DECIMAL.test(t) || v < range.min || v > max) fail(flag, wants, text, range.example ?? '5');
    return v;
  };
}

/**
 * A whole number from min to max. Compared as BigInt, so that no number is
 * too long to be refused exactly (Number('4294967296') is fine, but digits past
 * 2^53 round).
 */
export function integerParser(flag: string, range: { min: number; max: number; what?: string; example?: string }): Parser<number> {
  const wants = `${range.what ?? 'a whole number'} from ${range.min} to ${range.max}`;
  return (text) => {
    const t = text.trim();
    if (!WHOLE.test(t) || BigInt(t) < BigInt(range.min) || BigInt(t) > BigInt(range.max)) fail(flag, wants, text, range.example ?? String(range.min));
    return Number(t);
  };
}

/** A process id (or, with what = 'a thread id', a tid): 1 to PID_MAX_LIMIT. 0 is the idle task, never a target. */
export function pidParser(flag = '-p', what = 'a process id'): Parser<number> {
  return integerParser(flag, { min: 1, max: PID_MAX_LIMIT, what, example: '1234' });
}

const USER_NAME = /^[A-Za-z_][A-Za-z0-9_.-]*\$?$/;

/** A uid (0 to 4294967294), or a user name looked up through NSS (id -u), as execsnoop -u takes. */
export function uidParser(flag = '-u'): Parser<number> {
  const numeric = integerParser(flag, { min: 0, max: MAX_UID, what: 'a user name or a uid', example: '1000' });
  return (text) => {
    const t = text.trim();
    if (WHOLE.test(t)) return numeric(t);
    if (!USER_NAME.test(t)) fail(flag, `a user name or a uid from 0 to ${MAX_UID}`, text, '1000');
    let out: string;
    try {
      out = execFileSync('id', ['-u', t], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    } catch {
      throw new UsageError(`${flag}: no such user '${text}'`, 'give a user name or a numeric uid');
    }
    return Number(out);
  };
}

/** An errno by name (ENOENT, enoent) or number, 1 to MAX_ERRNO. */
export function errnoParser(flag = '-e'): Parser<number> {
  return (text) => {
    const t = text.trim();
    const n = WHOLE.test(t) ? (BigInt(t) <= BigInt(MAX_ERRNO) ? Number(t) : undefined) : /^[A-Za-z][A-Za-z0-9]*$/.test(t) ? errnoNumber(t) : undefined;
    if (n === undefined || n < 1 || n > MAX_ERRNO) {
      throw new UsageError(`${flag} wants an errno name or a number from 1 to ${MAX_ERRNO}, got '${text}'`, `e.g. ${flag} ENOENT or ${flag} 2`);
    }
    return n;
  };
}

/** A TCP/UDP port, 1 to 65535. */
export function portParser(flag = '--port'): Parser<number> {
  return integerParser(flag, { min: 1, max: 65535, what: 'a port', example: '8080' });
}

/** Comma-separated ports, at least one. */
export function portListParser(flag = '--port'): Parser<number[]> {
  return (text) => {
    const parts = text.split(',').map((p) => p.trim());
    if (parts.some((p) => !WHOLE.test(p) || BigInt(p) < 1n || BigInt(p) > 65535n)) {
      throw new UsageError(`${flag} wants port numbers from 1 to 65535, comma-separated, got '${text}'`, `e.g. ${flag} 80,443`);
    }
    return parts.map(Number);
  };
}
