#!/usr/bin/env node
// The `filer-sidecar-injector` command. Node 24 runs this TypeScript directly.
import { runMain } from "./main.ts"

runMain()
