// Debian's Node 20 has no fs.globSync, which the conformance suite imports by name (it
// wants Node >= 22). `node --import ./fs-globsync.mjs` hands the suite's own modules an fs
// with globSync from the glob package (pinned in package-lock.json); nothing else changes.
import { register } from "node:module";

export async function resolve(specifier, context, next) {
  if (
    (specifier === "fs" || specifier === "node:fs") &&
    context.parentURL?.includes("/node_modules/@modelcontextprotocol/conformance/")
  ) {
    return { url: new URL("./fs-with-globsync.mjs", import.meta.url).href, shortCircuit: true };
  }
  return next(specifier, context);
}

if (!("globSync" in (await import("node:fs")))) {
  register(import.meta.url);
}
