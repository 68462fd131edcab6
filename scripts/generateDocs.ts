/** `npm run docs`: regenerates the documents that are derived from code. */
import { writeFileSync } from "node:fs";
import { RETRY_POLICIES } from "../src/integrations/registry.js";
import { renderRetryPolicyDoc, RETRY_DOC_PATH } from "../src/integrations/shared/retryDoc.js";

writeFileSync(RETRY_DOC_PATH, renderRetryPolicyDoc(RETRY_POLICIES));
process.stdout.write(`wrote ${RETRY_DOC_PATH}\n`);
