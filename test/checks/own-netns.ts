// C for the checks' programs that count in a network namespace of their own
// (a new one's counters hold only what the program did): unshare it and bring
// its loopback up; at the end, say which namespace and port it used and what
// the namespace counted (parsed by ownNetnsReport). Paste before main(); needs
// <sched.h>, <net/if.h>, <sys/ioctl.h>, <sys/socket.h>, <sys/stat.h>,
// <string.h>, <stdio.h>.
export const OWN_NETNS_C = String.raw`
static int own_netns_lo_up(void) {
  if (unshare(CLONE_NEWNET)) { perror("unshare"); return 1; }
  int fd = socket(AF_INET, SOCK_DGRAM, 0);
  struct ifreq ifr = {0};
  strcpy(ifr.ifr_name, "lo");
  if (ioctl(fd, SIOCGIFFLAGS, &ifr) || (ifr.ifr_flags |= IFF_UP, ioctl(fd, SIOCSIFFLAGS, &ifr))) { perror("lo up"); return 1; }
  close(fd);
  return 0;
}

/* "netns INODE", "port P", then FILE's lines that start with PREFIX (a
 * /proc/self/net counter table: a line of names, a line of values). */
static void own_netns_report(int port, const char *file, const char *prefix) {
  struct stat st;
  stat("/proc/self/ns/net", &st);
  printf("netns %lu\nport %d\n", (unsigned long)st.st_ino, port);
  FILE *f = fopen(file, "r");
  char line[8192];
  while (f && fgets(line, sizeof line, f)) if (!strncmp(line, prefix, strlen(prefix))) fputs(line, stdout);
}
`;

/** What own_netns_report printed: the namespace's inode, the port, and a counter by name from its table. */
export function ownNetnsReport(out: string, prefix: string): { netns: number; port: number; counter: (name: string) => number } {
  const netns = Number(/^netns (\d+)/m.exec(out)?.[1]);
  const port = Number(/^port (\d+)/m.exec(out)?.[1]);
  const [keys, values] = out.split('\n').filter((l) => l.startsWith(prefix)).map((l) => l.trim().split(/\s+/));
  return {
    netns,
    port,
    counter: (name) => {
      const i = keys?.indexOf(name) ?? -1;
      if (i < 0 || !values) throw new Error(`no ${prefix} ${name} in the program's output:\n${out}`);
      return Number(values[i]);
    },
  };
}
