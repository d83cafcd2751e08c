// rbtrace exporter: one long-running process that keeps the chosen tools'
// BPF programs attached and serves their figures as Prometheus metrics.
//
// It does not use Session's -d/-i model (a session ends; a daemon does not,
// and SIGHUP must not stop it): it owns its sources and its HTTP server, and
// on SIGTERM/SIGINT closes both, which detaches every program. Collection
// happens when scraped (coalesced: parallel scrapes share one reading), plus
// a background reading when nobody has scraped for a while, so the BPF hash
// maps that are drained on read never fill.
import { join } from 'node:path';
import { packageRoot } from '../core/package.js';
import { Option, type Command } from 'commander';
import { defineTool } from '../core/tool.js';
import { RbtraceError, UsageError } from '../core/errors.js';
import { checkBtf, checkPrivileges } from '../core/linux/system.js';
import { parsePositiveInt } from '../core/options.js';
import { MetricsServer, parseListen } from '../core/metrics/server.js';
import { SeriesLimiter, seriesKey } from '../core/metrics/limit.js';
import type { MetricFamily, Sample } from '../core/metrics/exposition.js';
import { releaseFreedMemory } from '../core/linux/memory.js';
import { boundHeap } from './exporter/heap.js';
import { SOURCES, SOURCE_NAMES, exporterScope, type Source, type SourceName } from './exporter/sources.js';
import { SourceSupervisor } from './exporter/supervisor.js';
import { loadForTarget } from '../core/tool.js';
import { Target } from '../core/target.js';
import type { BpfObject } from '../core/bpf/object.js';
import { resolveCgroupDir, type CgroupDir } from '../core/linux/cgroup.js';

export interface ExporterOptions {
  listen: string;
  tools?: string;
  /** --require: tools whose failure stops the exporter. */
  require?: string;
  maxSeries: number;
  /** --cgroup DIR: only tasks in this cgroup v2 directory and below. */
  cgroup?: CgroupDir;
  verbose?: boolean;
}

export const DEFAULT_LISTEN = '127.0.0.1:9435';
const DEFAULT_TOOLS: SourceName[] = ['syscount', 'synqueue', 'execsnoop', 'gcstat'];
/** Parallel scrapes within this many ms share one reading of the maps. */
/** Each running source's skipped runs, summed over the objects it loaded (set where the exporter starts it). */
const skippedRunsOf = new WeakMap<Source, () => number>();
const COALESCE_MS = 200;
/** A reading at least this often even without scrapes (drained maps must not fill). */
const BACKGROUND_MS = 30_000;
/** Freed C heap given back to the system this often (malloc_trim: well under a millisecond). */
const TRIM_MS = 10_000;

export function parseTools(text: string, option = '--tools'): SourceName[] {
  const names = text.split(',').map((s) => s.trim()).filter(Boolean);
  if (names.length === 0) throw new UsageError(`${option} wants at least one tool`, `from: ${SOURCE_NAMES.join(', ')}`);
  for (const n of names) {
    if (n === 'mallocstat' || n === 'strlat') throw new UsageError(`${option}: ${n} is not exported yet (it costs a trap per call)`, `pick from: ${SOURCE_NAMES.join(', ')}`);
    if (!(SOURCE_NAMES as readonly string[]).includes(n)) throw new UsageError(`${option}: unknown tool '${n}'`, `pick from: ${SOURCE_NAMES.join(', ')}`);
  }
  return [...new Set(names)] as SourceName[];
}

/**
 * Everything a scrape shows, built from the sources' families: the series
 * limit applied per family, counters held monotonic (a reading below the
 * last shown value, which a torn per-CPU read could give, shows the last
 * value), and the exporter's own families.
 */
export class Gatherer {
  private readonly limiters = new Map<string, SeriesLimiter>();
  /** Families whose source applies the limit itself: their drops so far. */
  private readonly limitedBySource = new Map<string, number>();
  private readonly lastCounter = new Map<string, Map<string, number>>();
  private cached?: { at: number; families: MetricFamily[] };

  private readonly errors = new Map<string, number>();

  constructor(private readonly sources: () => Source[], private readonly maxSeries: number, private readonly own: () => MetricFamily[] = () => [],
    private readonly onError: (tool: string, err: unknown) => void = () => {}) {}

  gather(): MetricFamily[] {
    const now = Date.now();
    if (this.cached && now - this.cached.at < COALESCE_MS) return this.cached.families;
    const started = process.hrtime.bigint();
    const families: MetricFamily[] = [];
    const sources = this.sources();
    for (const s of sources) {
      // One tool failing to read (a map gone wrong) must not take the others' figures with it.
      let got: MetricFamily[];
      try {
        got = s.collect();
      } catch (err) {
        this.errors.set(s.tool, (this.errors.get(s.tool) ?? 0) + 1);
        this.onError(s.tool, err);
        continue;
      }
      for (const f of got) families.push(this.bound(f));
    }
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    families.push(
      {
        name: 'rbtrace_exporter_dropped_series', type: 'counter',
        help: 'Series left out because their family reached --max-series (each counted once while it exists).',
        samples: [
          ...[...this.limiters].map(([family, l]) => ({ labels: { family }, value: l.dropped })),
          ...[...this.limitedBySource].map(([family, value]) => ({ labels: { family }, value })),
        ],
      },
      {
        name: 'rbtrace_exporter_lost_events', type: 'counter', help: 'Events the BPF side could not pass on (ring buffer full), per tool.',
        samples: sources.map((s) => ({ labels: { tool: s.tool }, value: s.lost() })),
      },
      {
        name: 'rbtrace_exporter_skipped_runs', type: 'counter',
        help: 'Runs of a tool\'s BPF programs the kernel skipped, its CPU already in BPF (another program, or a map syscall): its figures may be short by as many events. Counted since Linux 6.7 for tracepoints and kprobes.',
        samples: sources.map((s) => ({ labels: { tool: s.tool }, value: skippedRunsOf.get(s)?.() ?? 0 })),
      },
      {
        name: 'rbtrace_exporter_collect_errors', type: 'counter', help: 'Readings of a tool\'s maps that failed (its figures were left out of that scrape), per tool.',
        samples: sources.map((s) => ({ labels: { tool: s.tool }, value: this.errors.get(s.tool) ?? 0 })),
      },
      {
        name: 'rbtrace_exporter_tool_info', type: 'gauge', help: 'Tools whose probes are attached (1), with the attach path each uses.',
        samples: sources.map((s) => ({ labels: { tool: s.tool, attach_path: s.path }, value: 1 })),
      },
      { name: 'rbtrace_exporter_collect_seconds', type: 'gauge', unit: 'seconds', help: 'Time the last reading of the BPF maps took.', samples: [{ labels: {}, value: seconds }] },
      ...processFamilies(),
      ...this.own(),
    );
    const cached = (this.cached = { at: Date.now(), families });
    // Kept for the coalescing window only: between scrapes nothing of a
    // reading stays (the families, and the documents rendered from them).
    setTimeout(() => { if (this.cached === cached) this.cached = undefined; }, COALESCE_MS).unref();
    return families;
  }

  private bound(f: MetricFamily): MetricFamily {
    if (f.limited) {
      this.limitedBySource.set(f.name, f.limited.dropped);
      return f;
    }
    let limiter = this.limiters.get(f.name);
    if (!limiter) this.limiters.set(f.name, (limiter = new SeriesLimiter(this.maxSeries)));
    if (f.histograms) return { ...f, histograms: limiter.filter(f.histograms) };
    let samples = limiter.filter(f.samples ?? []);
    if (f.type === 'counter' && !f.monotonic) samples = this.monotonic(f.name, samples);
    return { ...f, samples };
  }

  private monotonic(family: string, samples: Sample[]): Sample[] {
    const before = this.lastCounter.get(family) ?? new Map<string, number>();
    const after = new Map<string, number>();
    const out = samples.map((s) => {
      const key = seriesKey(s);
      const value = Math.max(s.value, before.get(key) ?? 0);
      after.set(key, value);
      return { labels: s.labels, value, key };
    });
    // Series absent now are forgotten: if they come back, they start again (a new series).
    this.lastCounter.set(family, after);
    return out;
  }
}

/** The usual process_* families of an exporter (Prometheus client conventions), and Node's heap. */
function processFamilies(): MetricFamily[] {
  const cpu = process.cpuUsage();
  const mem = process.memoryUsage();
  return [
    { name: 'process_cpu_seconds', type: 'counter', help: 'User and system CPU time of the exporter.', samples: [{ labels: {}, value: (cpu.user + cpu.system) / 1e6 }] },
    { name: 'process_resident_memory_bytes', type: 'gauge', unit: 'bytes', help: 'Resident set size of the exporter.', samples: [{ labels: {}, value: mem.rss }] },
    { name: 'nodejs_heap_used_bytes', type: 'gauge', unit: 'bytes', help: 'V8 heap in use (of process_resident_memory_bytes).', samples: [{ labels: {}, value: mem.heapUsed }] },
    { name: 'nodejs_external_memory_bytes', type: 'gauge', unit: 'bytes', help: 'Memory of Buffers and other objects outside the V8 heap that it tracks.', samples: [{ labels: {}, value: mem.external }] },
  ];
}

export default defineTool<ExporterOptions>({
  name: 'exporter',
  summary: "the tools' figures as Prometheus metrics on /metrics, as a long-running daemon",
  traces: false,
  help: `Examples:
  sudo rbtrace exporter                       syscount, synqueue, execsnoop, gcstat on 127.0.0.1:9435
  curl -s localhost:9435/metrics
  sudo rbtrace exporter --listen 0.0.0.0:9435 --tools synqueue,syscount
  sudo rbtrace exporter --require synqueue    exit if synqueue cannot attach
A tool that cannot attach is left out (rbtrace_exporter_source_up 0, the reason
on stderr) and the others keep serving; causes that may pass are tried again.
/healthz answers 200 once every tool has attached or failed for good.
Runs until SIGTERM or SIGINT (which detach everything); SIGHUP is logged and ignored.
Metrics: man rbtrace-exporter. Deployment (systemd, Kubernetes, Grafana): ${join(packageRoot(), 'deploy')}/ (the package ships it).`,
  options(cmd: Command) {
    cmd
      .option('--listen <host:port>', `address to serve /metrics and /healthz on (a wider one than loopback is your explicit choice)`, DEFAULT_LISTEN)
      .option('--tools <list>', `tools to run, comma-separated (default: ${DEFAULT_TOOLS.join(',')}); one that cannot attach is left out, with a warning`)
      .option('--require <list>', 'tools that must attach: the exporter exits (status 1) if one fails for good')
      .option('--cgroup <dir>', 'only tasks in this cgroup v2 directory and below (a container, a pod, a systemd unit); synqueue: listeners whose owner is there', (v) => resolveCgroupDir(v))
      .addOption(new Option('--max-series <n>', 'at most this many series per metric family; more are dropped and counted').default(2000).argParser(parsePositiveInt('--max-series', 1_000_000)));
    // -v (which attach path each tool uses, and why others were passed over) is a global option.
  },
  async run(ctx, opts) {
    if (ctx.opts.json) throw new UsageError('--json does not apply to exporter: its output is /metrics, in the Prometheus text format', 'drop --json');
    const listen = parseListen(opts.listen);
    const tools = opts.tools !== undefined ? parseTools(opts.tools) : DEFAULT_TOOLS;
    const required = opts.require !== undefined ? parseTools(opts.require, '--require') : [];
    const notRun = required.filter((t) => !tools.includes(t));
    if (notRun.length) throw new UsageError(`--require ${notRun.join(',')}: not among the tools run (${tools.join(',')})`, 'add it to --tools, or drop it from --require');
    checkPrivileges();
    checkBtf();
    // Before anything is loaded or listened on: the same command under bounded V8 heap flags (same pid).
    boundHeap((line) => ctx.log.warn(line));

    const scope = exporterScope(opts.cgroup);
    const supervisor = new SourceSupervisor(tools,
      (name) => {
        const log = (line: string) => ctx.log.verbose(`${name}: ${line}`);
        const objects: BpfObject[] = [];
        const source = SOURCES[name as SourceName]({
          log, scope, maxSeries: opts.maxSeries,
          load: (spec, how) => {
            const loaded = loadForTarget(spec, how?.unscoped ? Target.all() : scope, { log });
            objects.push(loaded.obj);
            return loaded;
          },
        });
        skippedRunsOf.set(source, () => objects.reduce((n, o) => n + Object.values(o.skippedRuns()).reduce((a, b) => a + b, 0), 0));
        return source;
      },
      ctx.log);
    const gatherer = new Gatherer(() => supervisor.up(), opts.maxSeries, () => [...supervisor.families(), {
      name: 'rbtrace_exporter_scrapes', type: 'counter', help: 'Scrapes of /metrics answered, by format (text 0.0.4 or OpenMetrics, as the scraper asked).',
      samples: Object.entries(server.byFormat).map(([format, value]) => ({ labels: { format }, value })),
    }], (tool, err) => ctx.log.warn(`${tool}: reading its maps failed: ${(err as Error).message}`));
    const server: MetricsServer = new MetricsServer(() => gatherer.gather(), (err) => ctx.log.warn(`collection failed: ${(err as Error).message}`));
    server.healthy = () => supervisor.settled();
    const closeAll = () => {
      server.close();
      supervisor.close();
    };
    // Listening first: a scrape during attach gets 503, not "connection refused".
    await server.listen(listen);
    ctx.log.verbose(`listening on ${opts.listen}; attaching ${tools.join(', ')}`);

    let stopping: ((signal: string) => void) | undefined;
    let stopSignal: string | undefined;
    const stopped = new Promise<string>((resolve) => (stopping = resolve));
    const stop = (signal: string) => { stopSignal ??= signal; stopping!(signal); };
    const onTerm = () => stop('SIGTERM');
    const onInt = () => stop('SIGINT');
    const onHup = () => ctx.log.warn('SIGHUP: nothing to reload; still running (SIGTERM stops the exporter)');
    process.on('SIGTERM', onTerm);
    process.on('SIGINT', onInt);
    process.on('SIGHUP', onHup);
    const untrap = () => {
      process.off('SIGTERM', onTerm);
      process.off('SIGINT', onInt);
      process.off('SIGHUP', onHup);
    };

    await supervisor.startAll(() => stopSignal !== undefined);
    // A required tool that failed for good, or nothing at all to serve: stop, saying why.
    const requiredFailed = required.find((t) => supervisor.state(t) === 'failed');
    if (!stopSignal && (requiredFailed || supervisor.allFailed())) {
      untrap();
      closeAll();
      throw requiredFailed
        ? new RbtraceError(`--require ${requiredFailed}: ${supervisor.reason(requiredFailed)}`, { hint: 'rbtrace doctor shows what this kernel allows each tool' })
        : new RbtraceError(`no tool could attach (${tools.map((t) => `${t}: ${supervisor.reason(t)}`).join('; ')})`, { hint: 'rbtrace doctor shows what this kernel allows each tool' });
    }

    // libbpf parsed megabytes of BTF while loading: give back what it freed.
    const trim = process.env.RBTRACE_NO_TRIM !== '1';
    if (trim) releaseFreedMemory();
    server.ready = true;
    const failed = tools.filter((t) => supervisor.state(t) !== 'up');
    process.stderr.write(`rbtrace exporter: probes attached (${supervisor.up().map((s) => `${s.tool}: ${s.path}`).join(', ')})${failed.length ? `, not attached: ${failed.join(', ')}` : ''}, serving http://${opts.listen}/metrics\n`);
    let lastScrapes = 0;
    const background = setInterval(() => {
      if (server.scrapes === lastScrapes) {
        try { gatherer.gather(); } catch (err) { ctx.log.warn(`collection failed: ${(err as Error).message}`); }
      }
      lastScrapes = server.scrapes;
    }, BACKGROUND_MS);
    // Each scrape frees megabytes of C heap (the response's Buffer, libuv's
    // and koffi's buffers) that glibc keeps, fragmented, for reuse: without
    // giving it back, RSS creeps up over hours though nothing leaks.
    const trimmer = trim ? setInterval(releaseFreedMemory, TRIM_MS) : undefined;

    const signal = await stopped;
    clearInterval(background);
    if (trimmer) clearInterval(trimmer);
    untrap();
    closeAll();
    ctx.log.verbose(`${signal}: every probe detached`);
  },
});
