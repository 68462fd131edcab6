#!/usr/bin/env node
/**
 * `npm start`: build dist/ if a source changed since the last build, then
 * serve, in this same process (one Node start-up, not two).
 */
import process from "node:process";
import { buildIfStale } from "./build.mjs";

buildIfStale();
process.argv.splice(2, process.argv.length - 2, "serve");
await import("../dist/cli.js");
