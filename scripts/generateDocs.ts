/** `npm run docs`: regenerates the documents that are derived from code. */
import { writeFileSync } from "node:fs";
import { RETRY_POLICIES } from "../src/integrations/registry.js";
import { renderRetryPolicyDoc, RETRY_DOC_PATH } from "../src/integrations/shared/retryDoc.js";
import { writeContractDoc } from "../src/testing/contractCapture.js";

writeFileSync(RETRY_DOC_PATH, renderRetryPolicyDoc(RETRY_POLICIES));
process.stdout.write(`wrote ${RETRY_DOC_PATH}\n`);
// The contract's examples, captured from the service and its sandboxes on 127.0.0.1 (also `npm run docs:contract`).
process.stdout.write(`wrote ${await writeContractDoc()}\n`);
