#!/usr/bin/env node
// Attach bench/syscount-floor.bpf.o's empty programs until SIGINT/SIGTERM.
//   node bench/syscount-floor.mjs OBJECT exit|both
// Prints "ready" on stdout once attached. Uses the SDK from dist/.
import { BpfObject } from '../dist/src/core/bpf/object.js';

const [object, which = 'exit'] = process.argv.slice(2);
const programs = which === 'both' ? ['floor_enter', 'floor_exit'] : ['floor_exit'];
const obj = BpfObject.open(object);
obj.selectPrograms(programs);
obj.load();
for (const p of programs) obj.program(p).attach();
process.stdout.write('ready\n');
const end = () => {
  obj.close();
  process.exit(0);
};
process.on('SIGINT', end);
process.on('SIGTERM', end);
setInterval(() => {}, 1 << 30);
