{
 "format": "rbtrace-run",
 "version": 1,
 "rbtrace_version": "0.1.0",
 "kernel": "6.18.44-fc-v657",
 "tool": "synqueue",
 "options": {
  "table": true,
  "ipv6": true,
  "duration": 0.3
 },
 "command": null,
 "pid": null,
 "started": "2026-11-26T11:34:16.464Z",
 "duration_s": 0.423,
 "exit_status": 0,
 "schema": {
  "rows": {
   "array": "listeners",
   "key": [
    "addr",
    "port",
    "netns"
   ],
   "noun": "listener",
   "counts": [
    "overflows",
    "drops",
    "syncookies",
    "synack_retrans",
    "enqueued"
   ],
   "maxima": [
    "accept_queue_max",
    "syn_queue_max"
   ]
  },
  "primary": "overflows"
 },
 "figures": {
  "listeners": [],
  "total": {
   "overflows": 0,
   "drops": 0,
   "syncookies": 0,
   "synack_retrans": 0,
   "enqueued": 0,
   "accept_queue_max": 0,
   "syn_queue_max": 0
  }
 }
}
