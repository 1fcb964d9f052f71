/**
 * `npm run docs:settings`: writes the README's table of settings from the
 * settings' definitions (src/commands/settings.ts lists them). The README
 * test in test/manifests/kustomize.test.ts fails while the copy is stale.
 */
import { readFileSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { everySetting } from "../../src/commands/settings.ts"
import { withSettingsTable } from "../../src/config/table.ts"

const readme = join(import.meta.dirname, "..", "..", "README.md")
const updated = withSettingsTable(readFileSync(readme, "utf8"), everySetting)
if (updated === undefined) {
  process.stderr.write("README.md: the settings table's markers are missing\n")
  process.exit(1)
}
writeFileSync(readme, updated)
