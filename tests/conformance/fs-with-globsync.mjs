// node:fs plus globSync (see fs-globsync.mjs).
import fs from "node:fs";
import { globSync as fromGlob } from "glob";

export * from "node:fs";
export default fs;
export const globSync = (pattern, options) => fromGlob(pattern, options);
