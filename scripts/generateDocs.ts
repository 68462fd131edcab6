/** `npm run docs`: regenerates the documents that are derived from code. */
import { writeFileSync } from "node:fs";
import { renderRetryPolicyDoc, RETRY_DOC_PATH } from "../src/integrations/shared/retryDoc.js";

writeFileSync(RETRY_DOC_PATH, renderRetryPolicyDoc());
process.stdout.write(`wrote ${RETRY_DOC_PATH}\n`);
