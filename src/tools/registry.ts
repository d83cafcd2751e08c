// Every subcommand, with the one line `rbtrace --help` shows. Tool modules are
// imported only when run, so `rbtrace execsnoop` never loads synqueue's code.
import type { ToolDefinition } from '../core/tool.js';

export interface ToolEntry {
  name: string;
  summary: string;
  load: () => Promise<ToolDefinition<any>>;
}

export const TOOLS: ToolEntry[] = [
  { name: 'execsnoop', summary: 'trace exec() calls: new programs, their arguments and results', load: async () => (await import('./execsnoop.js')).default },
  { name: 'doctor', summary: 'what this kernel offers rbtrace, and what each tool would use', load: async () => (await import('./doctor.js')).default },
];
