// C for the checks' programs that count in a network namespace of their own
// (a new one's counters hold only what the program did): unshare it and bring
// its loopback up. Paste before main(); needs <sched.h>, <net/if.h>,
// <sys/ioctl.h>, <sys/socket.h>, <string.h>, <stdio.h>.
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
`;
