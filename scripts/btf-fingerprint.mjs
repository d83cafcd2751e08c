#!/usr/bin/env node
// Print the fingerprint of the running kernel's BTF as JSON (see src/core/bpf/btf.ts).
import { kernelBtfFingerprint } from '../dist/src/core/bpf/btf.js';
console.log(JSON.stringify(kernelBtfFingerprint(process.argv[2])));
