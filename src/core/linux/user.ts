// --user USER: run `-- CMD` as another user (strace's -u), while the
// tracing stays root's. The credentials are set by setpriv(1) in the gate
// (gate.ts), before the command's exec.
import { execFileSync } from 'node:child_process';
import { UsageError } from '../errors.js';

/** The largest valid uid: (uid_t)-1 means "no uid" to the kernel. */
const UID_MAX = 0xfffffffe;

/** Syntax check for the option (a name or a number in range); looked up later. */
export function parseUser(text: string): string {
  const t = text; // no trimming: 'x\n' is not the user x
  if (/^\d+$/.test(t)) {
    if (Number(t) > UID_MAX) throw new UsageError(`--user ${t} is not a valid uid`, `a uid is a whole number from 0 to ${UID_MAX}`);
    return t;
  }
  // The portable user name characters (POSIX), plus what useradd accepts.
  if (!/^[A-Za-z_][A-Za-z0-9_.-]*\$?$/.test(t) || t.length > 256) {
    throw new UsageError(`--user wants a user name or uid, got '${text.replace(/[^\x20-\x7e]/g, '?')}'`, 'e.g. --user nobody or --user 65534');
  }
  return t;
}

export class RunAs {
  private constructor(
    readonly uid: number,
    readonly gid: number,
    /** null: no passwd entry, so no supplementary groups. */
    readonly name: string | null,
  ) {}

  /** Look the user up (NSS, through getent: LDAP users too). */
  static lookup(user: string): RunAs {
    const entry = getentPasswd(user);
    if (entry) return new RunAs(entry.uid, entry.gid, entry.name);
    if (/^\d+$/.test(user)) {
      // A uid with no passwd entry: its own number as gid, no groups (never root's group 0 by default).
      const uid = Number(user);
      return new RunAs(uid, uid, null);
    }
    throw new UsageError(`--user ${user}: no such user`, 'check the name with getent passwd');
  }

  /** setpriv(1) options: real, effective and saved ids, then the user's groups. */
  setprivArgs(): string[] {
    return [`--reuid=${this.uid}`, `--regid=${this.gid}`, this.name ? '--init-groups' : '--clear-groups'];
  }
}

function getentPasswd(user: string): { name: string; uid: number; gid: number } | undefined {
  try {
    const line = execFileSync('getent', ['passwd', user], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).split('\n')[0];
    const [name, , uid, gid] = line.split(':');
    if (!name || !/^\d+$/.test(uid) || !/^\d+$/.test(gid)) return undefined;
    return { name, uid: Number(uid), gid: Number(gid) };
  } catch {
    return undefined;
  }
}
