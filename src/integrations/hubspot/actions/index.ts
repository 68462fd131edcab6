/** HubSpot's typed actions. */
import { createContact } from "./createContact.js";
import { searchContacts } from "./searchContacts.js";

export const hubspotActions = { createContact, searchContacts } as const;
