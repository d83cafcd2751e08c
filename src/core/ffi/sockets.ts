// Bare BSD sockets from libc, for what Node's net module cannot do: a TCP
// listener whose accept() the caller controls (Node accepts every connection
// as soon as it arrives, so its accept queue never fills). Used by demos and
// tests that need a real, slowly-draining accept queue (synqueue --demo).
// Nothing here is async: accept is non-blocking, the caller polls.
import koffi from 'koffi';

let libc: koffi.IKoffiLib | undefined;
let fns: Record<string, koffi.KoffiFunction> | undefined;

function api(): Record<string, koffi.KoffiFunction> {
  if (fns) return fns;
  libc ??= koffi.load('libc.so.6');
  fns = {
    socket: libc.func('int socket(int domain, int type, int protocol)'),
    setsockopt: libc.func('int setsockopt(int fd, int level, int name, const void *val, uint32_t len)'),
    bind: libc.func('int bind(int fd, const void *addr, uint32_t len)'),
    listen: libc.func('int listen(int fd, int backlog)'),
    accept4: libc.func('int accept4(int fd, void *addr, void *len, int flags)'),
    getsockname: libc.func('int getsockname(int fd, _Out_ uint8_t *addr, _Inout_ uint32_t *len)'),
    close: libc.func('int close(int fd)'),
  };
  return fns;
}

const AF_INET = 2;
const AF_INET6 = 10;
const SOCK_STREAM = 1;
const SOCK_NONBLOCK = 0o4000;
const SOCK_CLOEXEC = 0o2000000;
const SOL_SOCKET = 1;
const SO_REUSEADDR = 2;
const SO_LINGER = 13;
const EAGAIN = 11;

function fail(what: string): never {
  const errno = koffi.errno();
  const err = new Error(`${what}: errno ${errno}`) as NodeJS.ErrnoException;
  err.errno = errno;
  throw err;
}

/** sockaddr_in / sockaddr_in6 for a numeric loopback-style address. */
function sockaddr(host: string, port: number): Uint8Array {
  const v6 = host.includes(':');
  const buf = new Uint8Array(v6 ? 28 : 16);
  const dv = new DataView(buf.buffer);
  dv.setUint16(0, v6 ? AF_INET6 : AF_INET, true);
  dv.setUint16(2, port, false);
  if (v6) {
    // only the forms we need: '::1' and '::'
    if (host === '::1') buf[8 + 15] = 1;
    else if (host !== '::') throw new Error(`unsupported IPv6 address ${host}`);
  } else {
    host.split('.').forEach((o, i) => (buf[4 + i] = Number(o)));
  }
  return buf;
}

/**
 * A listening TCP socket with listen(backlog) and accept() on demand.
 * Accepted connections are closed at once with SO_LINGER 0 (a RST, so no
 * TIME_WAIT socket is left behind).
 */
export class RawListener {
  readonly fd: number;
  readonly port: number;
  private closed = false;

  constructor(readonly host: string, backlog: number, port = 0) {
    const f = api();
    const v6 = host.includes(':');
    const fd = f.socket(v6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0) as number;
    if (fd < 0) fail('socket');
    this.fd = fd;
    try {
      const one = new Int32Array([1]);
      f.setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, one, 4);
      const addr = sockaddr(host, port);
      if ((f.bind(fd, addr, addr.length) as number) < 0) fail(`bind ${host}:${port}`);
      if ((f.listen(fd, backlog) as number) < 0) fail('listen');
      const out = new Uint8Array(28);
      const len = [28];
      if ((f.getsockname(fd, out, len) as number) < 0) fail('getsockname');
      this.port = new DataView(out.buffer).getUint16(2, false);
    } catch (err) {
      f.close(fd);
      throw err;
    }
  }

  /** Accept up to `max` waiting connections and reset them; returns how many. */
  acceptAndReset(max: number): number {
    const f = api();
    const linger = new Int32Array([1, 0]);
    let n = 0;
    while (n < max && !this.closed) {
      const c = f.accept4(this.fd, null, null, SOCK_CLOEXEC) as number;
      if (c < 0) {
        if (koffi.errno() === EAGAIN) break;
        fail('accept4');
      }
      f.setsockopt(c, SOL_SOCKET, SO_LINGER, linger, 8);
      f.close(c);
      n++;
    }
    return n;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    api().close(this.fd);
  }
}
