#!/usr/bin/env node
// The `filer-sidecar-injector` command. Node 24 runs this TypeScript directly.
import { enableCompileCache } from "node:module"

// Node caches compiled modules (and the TypeScript it stripped) on disk, which
// takes about a third off start-up once warm. The folder is NODE_COMPILE_CACHE
// (the image bakes one in) or else one under os.tmpdir(); if it cannot be
// written, Node runs without it. main.ts is imported after, so it is cached too.
enableCompileCache()
const { runMain } = await import("./main.ts")
runMain()
