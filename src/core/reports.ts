// The reports of a counting tool: one every -i seconds, each covering the
// time since the previous one, and a final one at the end (skipped when -d
// ends the run just after an interval's report: it would cover nothing).
import type { Session } from './session.js';

export interface ReportWhen {
  time: Date;
  /** Seconds since the previous report (or the start). */
  intervalS: number;
}

export function scheduleReports(session: Session, interval: number | undefined, report: (periodic: boolean, when: ReportWhen) => void): void {
  let last = Date.now();
  const fire = (periodic: boolean) => {
    const now = Date.now();
    const when = { time: new Date(now), intervalS: (now - last) / 1000 };
    last = now;
    report(periodic, when);
  };
  session.onInterval(() => fire(true));
  session.onFinish((reason) => {
    if (interval !== undefined && reason === 'duration' && Date.now() - last < 250) return;
    fire(false);
  });
}
