#!/usr/bin/env node
/**
 * `npm start`: build dist/ if a source changed since the last build, then
 * serve, in this same process (one Node start-up, not two).
 */
import process from "node:process";
import { buildIfStale } from "./build.mjs";

buildIfStale();
// `npm start -- <args>`: handed to serve, which takes none and says so.
process.argv.splice(2, 0, "serve");
await import("../dist/cli.js");
