/**
 * `npm run docs:contract` (also run by `npm run docs`): rewrites docs/integrations/contract-v1.md from
 * real requests to the service and its sandboxes, all on 127.0.0.1 (see src/testing/contractCapture.ts).
 */
import { writeContractDoc } from "../src/testing/contractCapture.js";

process.stdout.write(`wrote ${await writeContractDoc()}\n`);
