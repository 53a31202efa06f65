/* ia_rotate: re-encrypting stored secrets under the current key (SPEC §6,
 * `intauthctl rotate-keys`).
 *
 * Every ciphertext not written under the current key is opened with the key
 * ring (CREDENTIAL_ENCRYPTION_KEY + _PREVIOUS_KEYS) and sealed again under the
 * current key with the same associated-data context, so it stays bound to its
 * row: credentials.secret, integration_webhooks.secrets, the code_verifier of
 * OAuth states still in flight, and the sealed credential in the payload of
 * revoke_retry jobs not yet done.
 *
 * Rows go in batches, each claimed with FOR UPDATE SKIP LOCKED and written in
 * its own transaction with a compare-and-set on the old ciphertext, so a row
 * that a concurrent refresh or store replaced is never overwritten with stale
 * data, a row being changed right now is left for the next run, and an
 * interrupted run loses nothing: run it again until nothing remains.
 *
 * Order of a rotation: first give every program the new key as
 * CREDENTIAL_ENCRYPTION_KEY with the old one in CREDENTIAL_ENCRYPTION_PREVIOUS_KEYS
 * (and restart them), then run rotate-keys with the same settings until it
 * reports nothing remaining, then drop the old key.
 */
#ifndef IA_ROTATE_H
#define IA_ROTATE_H

#include "ia_app.h"
#include "ia_err.h"

#define IA_ROTATE_BATCH_DEFAULT 200
#define IA_ROTATE_BATCH_MAX 10000

typedef struct ia_rotate_table_counts {
	long rotated;    /* re-encrypted under the current key */
	long changed;    /* replaced concurrently between read and write: left as the writer left it */
	long failed;     /* did not open with any key of the ring (lost key or tampering): untouched */
	long remaining;  /* after the run, still not under the current key (failed, locked or new) */
} ia_rotate_table_counts;

typedef struct ia_rotate_counts {
	ia_rotate_table_counts credentials;
	ia_rotate_table_counts webhooks;
	ia_rotate_table_counts oauth_states;
	ia_rotate_table_counts revoke_jobs;
	long batches;    /* transactions committed */
} ia_rotate_counts;

/* Runs one pass over every table (batch rows per transaction, 1 ..
 * IA_ROTATE_BATCH_MAX). 0 when the pass completed (counts filled; rows may
 * remain, see counts), -1 with err on a database error (batches committed
 * before it stay committed; counts say how far it got). */
int ia_rotate_keys(ia_app *app, long batch, ia_rotate_counts *counts, ia_err *err);

#endif
