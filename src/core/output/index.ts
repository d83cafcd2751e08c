// Output helpers of the SDK: everything a tool needs to print data the way
// bcc does (histograms, tables, event columns), as NDJSON, or as live charts.
export * from './histogram.js';
export * from './format.js';
export * from './color.js';
export * from './json.js';
export * from './table.js';
export * from './chart.js';
export * from './stdout.js';
