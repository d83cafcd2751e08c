// Internet addresses and TCP states as the kernel gives them to BPF (raw
// address bytes, AF_* families, enum tcp_state), in the forms ss and bcc's
// tools print.

export const AF_INET = 2;
export const AF_INET6 = 10;

/** An address from its bytes (IPv4: the first 4), IPv6 in RFC 5952's short form. */
export function formatAddr(family: number, bytes: ArrayLike<number>): string {
  if (family !== AF_INET6) return `${bytes[0]}.${bytes[1]}.${bytes[2]}.${bytes[3]}`;
  const words: string[] = [];
  for (let i = 0; i < 16; i += 2) words.push(((bytes[i] << 8) | bytes[i + 1]).toString(16));
  // Collapse the longest run of zero words (RFC 5952).
  let best = -1;
  let bestLen = 0;
  for (let i = 0; i < 8; ) {
    if (words[i] !== '0') { i++; continue; }
    let j = i;
    while (j < 8 && words[j] === '0') j++;
    if (j - i > bestLen && j - i > 1) { best = i; bestLen = j - i; }
    i = j;
  }
  if (best < 0) return words.join(':');
  return `${words.slice(0, best).join(':')}::${words.slice(best + bestLen).join(':')}`;
}

/** 127.0.0.1:80, [::1]:80 (an address as formatAddr gives it, and a port). */
export function formatEndpoint(addr: string, port: number): string {
  return addr.includes(':') ? `[${addr}]:${port}` : `${addr}:${port}`;
}

/** enum tcp_state (include/net/tcp_states.h), as ss names them. */
const TCP_STATES = ['', 'ESTABLISHED', 'SYN_SENT', 'SYN_RECV', 'FIN_WAIT1', 'FIN_WAIT2', 'TIME_WAIT', 'CLOSE',
  'CLOSE_WAIT', 'LAST_ACK', 'LISTEN', 'CLOSING', 'NEW_SYN_RECV', 'BOUND_INACTIVE'];

export function tcpStateName(state: number): string {
  return TCP_STATES[state] || `STATE_${state}`;
}
