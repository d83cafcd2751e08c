#!/usr/bin/env node
// Print the fingerprint of the running kernel's BTF as JSON (see src/core/btf.ts).
import { kernelBtfFingerprint } from '../dist/src/core/btf.js';
console.log(JSON.stringify(kernelBtfFingerprint(process.argv[2])));
